// HTTP routes of the app tier (plain node:http). The contract (GUIDE.md, Part 4):
//   GET /health                     -> 200 {"status":"ok","message":"This is the health check"}
//   GET /ready                      -> 200 {"status":"ok","database":"up"}
//                                    | 503 {"status":"unavailable","database":"down"}
//   GET /transaction                -> 200 {"result":[{"id":1,"amount":400,"description":"groceries"}]}
//   POST /transaction {amount,desc} -> 201 {"result":{"id":..,"amount":..,"description":..}}
//                                      (desc may be empty or left out: stored as "")
//   DELETE /transaction             -> 200 {"deleted":n}
//   GET /transaction/:id            -> 200 {"result":{...}} | 404
//   DELETE /transaction/:id         -> 200 {"deleted":1,"result":{...}} | 404
// and, for the AWS workshop's own web tier (its app tier's routes, the id in the body as
// JSON {"id": n} or as a form id=n):
//   GET /transaction/id             -> 200 {"id":..,"amount":..,"desc":..,"result":{...}} | 404
//   DELETE /transaction/id          -> 200 {"deleted":1,"result":{...}} | 404
// `amount` is a JSON number or a numeric string ("123.45": what the workshop's page sends, the
// text of its input box); it is stored as DECIMAL(10,2) stores it, rounded half away from zero
// on the decimal digits sent ("1.005" -> 1.01), and the answer carries that stored value.
// Bad input is 400, a database that cannot be reached is 503, anything else 500. Every route
// is public (the web tier proxies /api/* to it): no answer carries a database error code or
// message, a stack or a name; those go to the instance's log (journalctl -u threetier-app).
import { isUnavailable } from './db.js';

const MAX_BODY_BYTES = 16 * 1024;
const MAX_AMOUNT = 99_999_999.99; // DECIMAL(10,2)
const MAX_CENTS = 9_999_999_999n;
const MAX_DESCRIPTION = 100; // VARCHAR(100)
const READY_TIMEOUT_MS = 3000; // below the 5 s that load balancers and curl --max-time 5 wait
// /ready is public: a failure is logged when its cause changes, else at most this often.
const READY_LOG_INTERVAL_MS = 30_000;
export const HEALTH_MESSAGE = 'This is the health check';

class HttpError extends Error {
  constructor(status, message, headers = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

function send(res, status, body, headers = {}) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(payload),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(payload);
}

function contentType(req) {
  return (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
}

function readText(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

async function readJson(req) {
  if (contentType(req) !== 'application/json') throw new HttpError(415, 'send the body as application/json');
  return parseJson(await readText(req));
}

// The body of the workshop's /transaction/id routes: JSON or a form, as its app tier parsed
// them. (Only GET and DELETE take it, methods an HTML form cannot send from another site.)
// No body at all is an empty object: the id is then missing, a 400.
async function readIdBody(req) {
  const type = contentType(req);
  if (type === 'application/json') return parseJson(await readText(req));
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(await readText(req)));
  if (type === '' && (await readText(req)) === '') return {};
  throw new HttpError(415, 'send the body as application/json: {"id": n}');
}

// A decimal number as text: digits with an optional point, sign and exponent ("123.45", "-5",
// ".5", "1e3"). Not "", "NaN", "Infinity", "0x10", "1,5", "1_000", nor non-ASCII digits.
const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
const AMOUNT_RULE = `amount must be a number or a numeric string between -${MAX_AMOUNT} and ${MAX_AMOUNT}`;

/**
 * The amount as DECIMAL(10,2) stores it, as text ("1.01"): rounded to cents half away from
 * zero on its decimal digits, as MySQL does, never through binary floating point (the double
 * nearest 1.005 is 1.00499..., which would round down). A JSON number is taken as the shortest
 * decimal that reads back as the same double (String(n)): the digits a person wrote.
 */
export function decimalAmount(value) {
  let text;
  if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
  else if (typeof value === 'string') text = value.trim();
  const match = text === undefined ? null : DECIMAL_TEXT.exec(text);
  if (!match || (match[2] + (match[3] ?? '')) === '') throw new HttpError(400, AMOUNT_RULE);
  const [, sign, whole, fraction = '', exponent = '0'] = match;
  // value = 0.<digits> x 10^point, with no leading zero in digits
  let digits = whole + fraction;
  let point = whole.length + Number(exponent);
  const leadingZeros = digits.length - digits.replace(/^0+/, '').length;
  digits = digits.slice(leadingZeros);
  point -= leadingZeros;
  let cents = 0n;
  if (digits !== '' && point > 10) throw new HttpError(400, AMOUNT_RULE); // at least 10^9: far too large
  if (digits !== '' && point >= -2) {
    // value x 100 = 0.<digits> x 10^(point + 2): its integer part, then the next digit decides
    const integerDigits = point + 2;
    const kept = digits.slice(0, integerDigits).padEnd(integerDigits, '0');
    cents = BigInt(kept || '0') + ((digits[integerDigits] ?? '0') >= '5' ? 1n : 0n);
  }
  if (cents > MAX_CENTS) throw new HttpError(400, AMOUNT_RULE);
  const units = (cents / 100n).toString();
  const rest = (cents % 100n).toString().padStart(2, '0');
  return `${sign === '-' && cents !== 0n ? '-' : ''}${units}.${rest}`;
}

export function validateTransaction(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'body must be a JSON object {"amount": number, "desc": string}');
  }
  const amount = decimalAmount(body.amount);
  // The workshop's page sends its description box as it is, "" when left empty, and the
  // workshop's app tier stores the row whatever the description: so does this one. An empty,
  // blank, missing or null description is stored as "" (that app tier interpolated a missing
  // one into its SQL as the text "undefined": not repeated here).
  const desc = body.desc ?? body.description ?? '';
  if (typeof desc !== 'string' || [...desc.trim()].length > MAX_DESCRIPTION) {
    throw new HttpError(400, `desc must be a string of at most ${MAX_DESCRIPTION} characters`);
  }
  return { amount, description: desc.trim() };
}

function parseId(raw) {
  let text;
  try {
    text = decodeURIComponent(raw);
  } catch {
    text = '';
  }
  return idFromText(text);
}

function idFromText(text) {
  const id = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : NaN;
  if (!(id <= 2_147_483_647)) throw new HttpError(400, 'id must be a positive integer');
  return id;
}

// The id of the workshop's /transaction/id routes, in the body: {"id": 3}, {"id": "3"} or id=3.
function idFromBody(body) {
  const id = body !== null && typeof body === 'object' && !Array.isArray(body) ? body.id : undefined;
  if (typeof id === 'number' && Number.isInteger(id)) return idFromText(String(id));
  if (typeof id === 'string') return idFromText(id.trim());
  throw new HttpError(400, 'id must be a positive integer, sent in the body: {"id": n}');
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer in ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function createHandler(db, log = console) {
  const columns = `id, amount, description`;

  // Liveness: this process serves HTTP. It never touches the database, because it is what
  // decides whether the instance is worth keeping: the AMI bake's health gate (the image is
  // baked before Aurora may be reachable), the target group's health check and, through
  // the ELB health check type, the Auto Scaling group's replacement decision. Replacing app
  // instances cannot fix a database, so a database outage must leave every target healthy.
  function health(req, res) {
    send(res, 200, { status: 'ok', message: HEALTH_MESSAGE });
  }

  // Readiness: the database answers (schema in place, a trivial query within the timeout),
  // i.e. /transaction can be served. For operators and end-to-end checks, not for the ASG.
  // Anyone can ask (/api/ready), so the answer is only up or down; why it is down -- the
  // error code and the server's message, which may name the user or the schema -- is logged.
  let lastReadyLog = { cause: null, at: 0 };
  function logNotReady(err) {
    const cause = `(${err.code || 'ERROR'}) ${err.message}`;
    const now = Date.now();
    if (cause !== lastReadyLog.cause || now - lastReadyLog.at >= READY_LOG_INTERVAL_MS) {
      lastReadyLog = { cause, at: now };
      log.warn(`readiness: database unavailable ${cause}`);
    }
  }

  async function ready(req, res) {
    try {
      await withTimeout(db.ping(READY_TIMEOUT_MS - 500), READY_TIMEOUT_MS);
      lastReadyLog = { cause: null, at: 0 };
      send(res, 200, { status: 'ok', database: 'up' });
    } catch (err) {
      logNotReady(err);
      send(res, 503, { status: 'unavailable', database: 'down' }, { 'Retry-After': '5' });
    }
  }

  async function list(req, res) {
    const rows = await db.query(`SELECT ${columns} FROM ${db.table} ORDER BY id`, [], { retry: true });
    send(res, 200, { result: rows });
  }

  async function add(req, res) {
    const tx = validateTransaction(await readJson(req));
    // The amount goes to the database as the decimal text it stores exactly ("1.01"), so the
    // row answered -- its amount as a number, as the list gives it -- is the row stored.
    const result = await db.query(`INSERT INTO ${db.table} (amount, description) VALUES (?, ?)`, [tx.amount, tx.description]);
    const row = { id: result.insertId, amount: Number(tx.amount), description: tx.description };
    send(res, 201, { message: 'added transaction successfully', result: row }, { Location: `/transaction/${row.id}` });
  }

  async function deleteAll(req, res) {
    const result = await db.query(`DELETE FROM ${db.table}`);
    send(res, 200, { message: 'deleted all transactions', deleted: result.affectedRows });
  }

  async function findOne(id) {
    const rows = await db.query(`SELECT ${columns} FROM ${db.table} WHERE id = ?`, [id], { retry: true });
    if (rows.length === 0) throw new HttpError(404, `transaction ${id} not found`);
    return rows[0];
  }

  async function getOne(req, res, id) {
    send(res, 200, { result: await findOne(id) });
  }

  async function deleteOne(req, res, id) {
    const row = await findOne(id);
    const result = await db.query(`DELETE FROM ${db.table} WHERE id = ?`, [id]);
    if (result.affectedRows === 0) throw new HttpError(404, `transaction ${id} not found`);
    send(res, 200, { message: 'deleted transaction', deleted: 1, result: row });
  }

  // The workshop's routes: the id in the body, the one-row answer also in its flat shape.
  async function getOneByBody(req, res) {
    const row = await findOne(idFromBody(await readIdBody(req)));
    send(res, 200, { id: row.id, amount: row.amount, desc: row.description, result: row });
  }

  async function deleteOneByBody(req, res) {
    await deleteOne(req, res, idFromBody(await readIdBody(req)));
  }

  // First match wins: /transaction/id before /transaction/:id.
  const routes = [
    { pattern: /^\/health$/, methods: { GET: health } },
    { pattern: /^\/ready$/, methods: { GET: ready } },
    { pattern: /^\/transaction$/, methods: { GET: list, POST: add, DELETE: deleteAll }, needsDb: true },
    { pattern: /^\/transaction\/id$/, methods: { GET: getOneByBody, DELETE: deleteOneByBody }, needsDb: true },
    { pattern: /^\/transaction\/([^/]+)$/, methods: { GET: getOne, DELETE: deleteOne }, needsDb: true, id: true },
  ];

  async function dispatch(req, res) {
    const path = new URL(req.url, 'http://localhost').pathname.replace(/\/+$/, '') || '/';
    const route = routes.find((r) => r.pattern.test(path));
    if (!route) throw new HttpError(404, `no route for ${path}`);
    const method = req.method === 'HEAD' && route.methods.GET ? 'GET' : req.method;
    const handler = route.methods[method];
    if (!handler) {
      throw new HttpError(405, `${req.method} is not allowed on ${path}`, { Allow: Object.keys(route.methods).join(', ') });
    }
    const id = route.id ? parseId(route.pattern.exec(path)[1]) : undefined;
    if (route.needsDb) await db.ensureReady();
    await handler(req, res, id);
  }

  return async function handle(req, res) {
    const started = Date.now();
    try {
      await dispatch(req, res);
    } catch (err) {
      if (err instanceof HttpError) {
        send(res, err.status, { error: err.message }, err.headers);
      } else if (isUnavailable(err)) {
        log.error(`database unavailable: ${err.code || ''} ${err.message}`);
        send(res, 503, { error: 'database unavailable, try again shortly' }, { 'Retry-After': '5' });
      } else {
        log.error(err);
        send(res, 500, { error: 'internal error' });
      }
    }
    if (!(req.url === '/health' && res.statusCode === 200)) {
      log.info(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - started}ms`);
    }
  };
}
