// Entry point: `node src/server.js` (run by the threetier-app systemd unit).
import http from 'node:http';
import { createHandler } from './app.js';
import { loadConfig } from './config.js';
import { credentialSource } from './credentials.js';
import { Database } from './db.js';

const RETRY_SCHEMA_MS = 5000;

function main() {
  const config = loadConfig();
  const { database } = config;
  const db = new Database(
    { host: database.host, port: database.port, name: database.name },
    credentialSource(database),
  );
  const server = http.createServer(createHandler(db));
  // Keep idle connections open longer than the ALB's 60 s idle timeout, so the ALB
  // never reuses a connection the app has just closed (intermittent 502s otherwise).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;

  server.listen(config.port, config.listenHost, () => {
    console.info(`app tier listening on ${config.listenHost}:${config.port}, database ${database.host}:${database.port}/${database.name}`);
  });

  // Create the schema (and seed) at start-up without waiting for a first request;
  // while the database is unreachable the app stays up, answers 503 and retries.
  const prepare = () => db.ensureReady().then(
    () => console.info('database schema ready'),
    (err) => {
      console.warn(`database not ready (${err.code || err.message}); retrying in ${RETRY_SCHEMA_MS / 1000} s`);
      setTimeout(prepare, RETRY_SCHEMA_MS).unref();
    },
  );
  prepare();

  const stop = (signal) => {
    console.info(`${signal}: shutting down`);
    server.close();
    server.closeIdleConnections();
    db.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

try {
  main();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
