"""A small Python app on threetier's app tier (README "Your application"), stdlib and PyMySQL only.

GET /healthz answers without the database (liveness: the bake, the target group and the Auto Scaling
group ask it). GET /db logs in with the credentials $DB_CREDENTIALS_COMMAND prints, over TLS verified
against $DB_CA_BUNDLE, and says which cipher the connection uses. The credentials are read once, then
again when the database refuses them (error 1045: the managed secret has rotated).
"""
import json
import os
import ssl
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))  # app.install's target
import pymysql

ACCESS_DENIED = 1045
credentials = {}


def read_credentials():
    printed = subprocess.run([os.environ["DB_CREDENTIALS_COMMAND"]], check=True, capture_output=True, text=True)
    credentials.update(json.loads(printed.stdout))


def connect():
    tls = ssl.create_default_context(cafile=os.environ["DB_CA_BUNDLE"])  # verifies the name too
    return pymysql.connect(host=os.environ["DB_HOST"], port=int(os.environ["DB_PORT"]), user=credentials["username"],
                           password=credentials["password"], ssl=tls, connect_timeout=5)


def database():
    if not credentials:
        read_credentials()
    try:
        return connect()
    except pymysql.err.OperationalError as error:
        if error.args[0] != ACCESS_DENIED:
            raise
        read_credentials()  # rotated: once more with the current ones
        return connect()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            return self.answer(200, {"status": "ok"})
        if self.path == "/db":
            try:
                with database() as connection, connection.cursor() as cursor:
                    cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                    cipher = cursor.fetchone()[1]
                return self.answer(200, {"database": "up", "user": credentials["username"], "tls": cipher})
            except Exception as error:  # the answer says what went wrong
                return self.answer(503, {"database": "down", "error": str(error)})
        return self.answer(404, {"error": "not found"})

    def answer(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    print(f"python app listening on {os.environ['PORT']}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
