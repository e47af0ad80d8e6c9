// A small Node.js app on threetier's app tier (README "Your application"), mysql2 only.
// GET /healthz answers without the database (liveness). GET /db logs in with the credentials
// $DB_CREDENTIALS_COMMAND prints, over TLS verified against $DB_CA_BUNDLE; the credentials are read
// once, then again when the database refuses them (ER_ACCESS_DENIED_ERROR, 1045: a rotation).
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const mysql = require("mysql2/promise");

let credentials = null;

function readCredentials() {
  credentials = JSON.parse(execFileSync(process.env.DB_CREDENTIALS_COMMAND, { encoding: "utf8" }));
}

function connect() {
  return mysql.createConnection({
    host: process.env.DB_HOST,
    port: Number(process.env.DB_PORT),
    user: credentials.username,
    password: credentials.password,
    ssl: { ca: fs.readFileSync(process.env.DB_CA_BUNDLE) }, // verifies the certificate and the name
    connectTimeout: 5000,
  });
}

async function database() {
  if (credentials === null) readCredentials();
  try {
    return await connect();
  } catch (error) {
    if (error.errno !== 1045) throw error;
    readCredentials(); // rotated: once more with the current ones
    return connect();
  }
}

function answer(response, status, body) {
  response.writeHead(status, { "Content-Type": "application/json" });
  response.end(JSON.stringify(body));
}

http.createServer(async (request, response) => {
  if (request.url === "/healthz") return answer(response, 200, { status: "ok" });
  if (request.url !== "/db") return answer(response, 404, { error: "not found" });
  let connection;
  try {
    connection = await database();
    const [rows] = await connection.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
    answer(response, 200, { database: "up", user: credentials.username, tls: rows[0].Value });
  } catch (error) {
    answer(response, 503, { database: "down", error: String(error.message) });
  } finally {
    if (connection) await connection.end();
  }
}).listen(Number(process.env.PORT), "0.0.0.0", () => console.log(`node app listening on ${process.env.PORT}`));
