// The database side: one mysql2 pool, the idempotent schema, and the error classes the
// HTTP layer maps to status codes. The pool never pins a dead server: connections that
// fail are destroyed, new ones resolve the writer endpoint again (Aurora failover moves
// it), and a rejected password makes the next use re-read the secret. Connections use the
// TLS settings of src/tls.js; a certificate that fails verification is a fatal handshake
// error (HANDSHAKE_SSL_ERROR), i.e. "unavailable", never a plain-text retry.
import mysql from 'mysql2/promise';

// Errors that mean "the database cannot be used right now" (HTTP 503), as opposed to a bug.
const UNAVAILABLE = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND',
  'EAI_AGAIN', 'EPIPE', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR', 'ER_ACCESS_DENIED_ERROR', 'ER_SERVER_SHUTDOWN',
  'ER_OPTION_PREVENTS_STATEMENT', // a writer demoted to reader during failover: read-only
  'ER_LOCK_WAIT_TIMEOUT', 'CREDENTIALS_UNAVAILABLE', 'QUERY_TIMEOUT',
]);
// Errors after which the connection must not go back to the pool.
const BROKEN_CONNECTION = new Set([
  'ECONNRESET', 'EPIPE', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_OPTION_PREVENTS_STATEMENT', 'ER_SERVER_SHUTDOWN', 'QUERY_TIMEOUT',
]);
const CREDENTIAL_REFRESH_INTERVAL_MS = 30_000;

export function isUnavailable(err) {
  return Boolean(err && (UNAVAILABLE.has(err.code) || err.fatal));
}

// An async value made on first use; a failure is not kept, so the next use tries again.
class Lazy {
  #make;
  #promise = null;

  constructor(make) {
    this.#make = make;
  }

  get() {
    if (!this.#promise) {
      this.#promise = this.#make().catch((err) => {
        this.#promise = null;
        throw err;
      });
    }
    return this.#promise;
  }

  /** Forgets the value; returns the promise it had, if any. */
  reset() {
    const old = this.#promise;
    this.#promise = null;
    return old;
  }
}

export class Database {
  #settings;
  #getCredentials;
  #log;
  #pool = new Lazy(() => this.#createPool());
  #ready = new Lazy(() => this.#createSchema());
  #lastCredentialRefresh = 0;

  constructor(settings, getCredentials, log = console) {
    this.#settings = { connectTimeoutMs: 5000, queryTimeoutMs: 10_000, poolSize: 10, ...settings };
    this.#getCredentials = getCredentials;
    this.#log = log;
  }

  get table() {
    return `\`${this.#settings.name}\`.\`transactions\``;
  }

  async #createPool() {
    let credentials;
    try {
      credentials = await this.#getCredentials();
    } catch (err) {
      const wrapped = new Error(`cannot read database credentials: ${err.message}`);
      wrapped.code = 'CREDENTIALS_UNAVAILABLE';
      throw wrapped;
    }
    const s = this.#settings;
    return mysql.createPool({
      host: s.host,
      port: s.port,
      user: credentials.username,
      password: credentials.password,
      connectionLimit: s.poolSize,
      maxIdle: s.poolSize,
      idleTimeout: 60_000,
      queueLimit: 100,
      connectTimeout: s.connectTimeoutMs,
      enableKeepAlive: true,
      keepAliveInitialDelay: 10_000,
      decimalNumbers: true,
      charset: 'utf8mb4',
      ssl: s.tls, // src/tls.js: verified TLS, or undefined when explicitly disabled
    });
  }

  // The password was rejected: the managed secret may have rotated. Drop the pool so the
  // next use reads the secret again (at most once per interval, so a wrong secret does
  // not turn every request into a Secrets Manager call).
  #refreshCredentials() {
    if (Date.now() - this.#lastCredentialRefresh < CREDENTIAL_REFRESH_INTERVAL_MS) return;
    this.#lastCredentialRefresh = Date.now();
    this.#log.warn('database rejected the credentials; re-reading the secret');
    this.#pool.reset()?.then((pool) => pool.end()).catch(() => {});
  }

  /** Runs one statement on a pooled connection; `retry` re-runs a read once on a lost connection. */
  async query(sql, values = [], { retry = false, timeoutMs } = {}) {
    const pool = await this.#pool.get();
    let conn;
    try {
      conn = await pool.getConnection();
    } catch (err) {
      if (err.code === 'ER_ACCESS_DENIED_ERROR') this.#refreshCredentials();
      throw err;
    }
    try {
      const [rows] = await conn.query({ sql, values, timeout: timeoutMs ?? this.#settings.queryTimeoutMs });
      conn.release();
      return rows;
    } catch (err) {
      if (BROKEN_CONNECTION.has(err.code) || err.fatal) {
        conn.destroy();
        if (retry && err.code !== 'QUERY_TIMEOUT') return this.query(sql, values, { timeoutMs });
      } else {
        conn.release();
      }
      if (err.code === 'ER_NO_SUCH_TABLE' || err.code === 'ER_BAD_DB_ERROR') this.#ready.reset();
      throw err;
    }
  }

  /** Creates the schema once per process (idempotent in the database); retried after a failure. */
  ensureReady() {
    return this.#ready.get();
  }

  async #createSchema() {
    const db = `\`${this.#settings.name}\``;
    await this.query(`CREATE DATABASE IF NOT EXISTS ${db} CHARACTER SET utf8mb4`);
    await this.query(
      `CREATE TABLE IF NOT EXISTS ${this.table} (
         id INT NOT NULL AUTO_INCREMENT,
         amount DECIMAL(10,2),
         description VARCHAR(100),
         PRIMARY KEY (id)
       ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    );
    await this.query(
      `CREATE TABLE IF NOT EXISTS ${db}.\`threetier_seed\` (
         name VARCHAR(64) NOT NULL PRIMARY KEY,
         applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
       ) ENGINE=InnoDB`,
    );
    await this.#seedOnce(db);
  }

  // The sample row goes in exactly once per database: a marker row records that the seed
  // ran, so deleting every transaction later does not bring the sample back. The marker's
  // primary key serialises concurrent first starts (two instances of the ASG at once).
  async #seedOnce(db) {
    const pool = await this.#pool.get();
    const conn = await pool.getConnection();
    try {
      await conn.beginTransaction();
      const [marker] = await conn.query(
        `INSERT IGNORE INTO ${db}.\`threetier_seed\` (name) VALUES (?)`, ['sample-transaction'],
      );
      if (marker.affectedRows === 1) {
        // An existing table that already holds data (an older deployment) is left alone.
        const [[{ n }]] = await conn.query(`SELECT COUNT(*) AS n FROM ${this.table}`);
        if (Number(n) === 0) {
          await conn.query(`INSERT INTO ${this.table} (amount, description) VALUES (?, ?)`, [400, 'groceries']);
          this.#log.info('seeded the sample transaction');
        }
      }
      await conn.commit();
      conn.release();
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  /** Readiness probe (GET /ready): the schema is in place and the server answers a trivial query quickly. */
  async ping(timeoutMs = 2000) {
    await this.ensureReady();
    await this.query('SELECT 1', [], { timeoutMs });
  }

  async close() {
    await this.#pool.reset()?.then((pool) => pool.end()).catch(() => {});
  }
}
