// Reads the app tier's configuration: a JSON file the bootstrap writes at bake time
// (default /etc/threetier/app-config.json, or $THREETIER_APP_CONFIG). It holds no secret:
// the database credentials come from Secrets Manager (the RDS-managed secret named by
// database.secretArn), read with the instance role.
import { readFileSync } from 'node:fs';

export const DEFAULT_CONFIG_PATH = '/etc/threetier/app-config.json';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IDENTIFIER = /^[A-Za-z0-9_]{1,64}$/;

function fail(message) {
  throw new Error(`invalid app configuration: ${message}`);
}

function port(value, name) {
  if (!Number.isInteger(value) || value < 1 || value > 65535) fail(`${name} must be a port number`);
  return value;
}

export function parseConfig(raw) {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('expected a JSON object');
  const db = raw.database;
  if (db === null || typeof db !== 'object') fail('"database" section is missing');
  if (typeof db.host !== 'string' || !HOSTNAME.test(db.host)) fail('database.host must be a host name');
  const name = db.name ?? 'webappdb';
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) fail('database.name must match [A-Za-z0-9_]{1,64}');
  for (const key of ['secretArn', 'region']) {
    if (db[key] !== undefined && typeof db[key] !== 'string') fail(`database.${key} must be a string`);
  }
  return {
    port: port(raw.port ?? 4000, 'port'),
    listenHost: typeof raw.listenHost === 'string' ? raw.listenHost : '0.0.0.0',
    database: {
      host: db.host,
      port: port(db.port ?? 3306, 'database.port'),
      name,
      secretArn: db.secretArn,
      region: db.region,
    },
  };
}

export function loadConfig(env = process.env) {
  const path = env.THREETIER_APP_CONFIG || DEFAULT_CONFIG_PATH;
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    fail(`cannot read ${path}: ${err.message}`);
  }
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    fail(`${path} is not JSON: ${err.message}`);
  }
  return parseConfig(raw);
}
