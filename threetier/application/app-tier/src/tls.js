// TLS to the database. The app tier reaches Aurora across the VPC; the connection carries the
// database password and every row, so it is encrypted, and the server must prove it is the
// cluster: its certificate must chain to one of Amazon RDS's CAs -- exactly those shipped
// with the app in certs/rds-global-bundle.pem (see certs/README.md), not the system's -- and
// name the host the app connects to (the writer endpoint). Every RDS endpoint's certificate
// chains to the same CAs, so the name check is what tells this cluster from any other.
//
// THREETIER_DB_TLS selects it: "required" (the default when unset; the systemd unit sets it)
// or "disabled", the explicit opt-out for a local database without TLS. Nothing in between:
// no TLS that skips verification, no fallback to plain text. Against a server that does not
// require TLS (require_secure_transport off) "required" works the same: the app asks for it.
// THREETIER_DB_CA_BUNDLE replaces the bundle's path (tests: a local CA's certificate).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';

export const BUNDLED_CA_FILE = fileURLToPath(new URL('../certs/rds-global-bundle.pem', import.meta.url));
const MODES = ['required', 'disabled'];
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END CERTIFICATE-----/g;

function fail(message) {
  throw new Error(`invalid app configuration: ${message}`);
}

/** The CA certificates in a PEM file, each checked to parse; fails on none. */
export function readCaBundle(path, readFile = readFileSync) {
  let text;
  try {
    text = readFile(path, 'utf8');
  } catch (err) {
    fail(`cannot read the database CA bundle ${path}: ${err.message}`);
  }
  const certificates = (text.match(PEM_CERTIFICATE) || []).map((pem) => pem.replace(/\r\n/g, '\n'));
  if (certificates.length === 0) fail(`the database CA bundle ${path} has no certificate`);
  certificates.forEach((pem, i) => {
    try {
      new X509Certificate(pem); // eslint-disable-line no-new
    } catch (err) {
      fail(`certificate ${i + 1} of the database CA bundle ${path} does not parse: ${err.message}`);
    }
  });
  return certificates;
}

/** The mysql2 `ssl` option for `host` in this environment: TLS options, or undefined when disabled. */
export function databaseTls(host, env = process.env, readFile = readFileSync) {
  const mode = env.THREETIER_DB_TLS || 'required';
  if (!MODES.includes(mode)) {
    fail(`THREETIER_DB_TLS must be "required" or "disabled", not ${JSON.stringify(mode)}`);
  }
  if (mode === 'disabled') return undefined;
  // mysql2 checks the certificate's names only against a host *name* (for an address it would
  // check "localhost"): Aurora's endpoints are names, and nothing else can be verified.
  if (isIP(host)) fail(`database.host must be a DNS name for verified TLS, not the address ${host}`);
  return {
    ca: readCaBundle(env.THREETIER_DB_CA_BUNDLE || BUNDLED_CA_FILE, readFile),
    rejectUnauthorized: true, // the chain must end at one of those CAs
    verifyIdentity: true, // and the certificate must name the host (mysql2 skips this unless asked)
    minVersion: 'TLSv1.2',
  };
}

/** One line for the log: what the app does about TLS to `host`. */
export function describeTls(tls, host, env = process.env) {
  if (!tls) return 'database TLS DISABLED (THREETIER_DB_TLS=disabled): credentials and rows cross the network in plain text';
  const file = env.THREETIER_DB_CA_BUNDLE || BUNDLED_CA_FILE;
  return `database TLS required: ${tls.minVersion}+, the server's certificate checked against ${tls.ca.length} CAs `
    + `(${file}) and the name ${host}`;
}
