// Entry point: `node src/server.js` (run by the threetier-app systemd unit).
import http from 'node:http';
import { createHandler } from './app.js';
import { loadConfig } from './config.js';
import { credentialSource } from './credentials.js';
import { Database } from './db.js';
import { databaseTls, describeTls } from './tls.js';

// Schema retries while the database cannot be reached: 1 s, 2 s, 4 s, then every 5 s.
const RETRY_SCHEMA_MS = [1000, 2000, 4000, 5000];
const LOG_EVERY_N_FAILURES = 12; // about once a minute once the retries settle

function main() {
  const config = loadConfig();
  const { database } = config;
  const tls = databaseTls(database.host); // fails here, before anything listens, if it cannot be honoured
  const db = new Database(
    { host: database.host, port: database.port, name: database.name, tls },
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
    (tls ? console.info : console.warn)(describeTls(tls, database.host));
  });

  // Create the schema (and seed) in the background, without waiting for a first request.
  // The app must start, and answer /health, with no database at all: the golden image is
  // baked before Aurora may be reachable. Until the schema is in place /ready and
  // /transaction answer 503; the attempts go on until one succeeds (each is idempotent).
  // Later losses (a dropped database) are repaired by the request that finds them.
  let failures = 0;
  const prepare = () => db.ensureReady().then(
    () => console.info(`database schema ready${failures ? ` after ${failures} failed attempts` : ''}`),
    (err) => {
      failures += 1;
      const delay = RETRY_SCHEMA_MS[Math.min(failures, RETRY_SCHEMA_MS.length) - 1];
      if (failures === 1 || failures % LOG_EVERY_N_FAILURES === 0) {
        console.warn(`database not ready (${err.code || 'ERROR'}: ${err.message}); retrying in ${delay / 1000} s (logged about once a minute)`);
      }
      setTimeout(prepare, delay).unref();
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
