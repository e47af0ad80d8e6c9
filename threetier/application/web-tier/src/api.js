// The app tier, reached through nginx: /api/transaction becomes /transaction upstream.
const BASE = '/api/transaction';

async function call(path, options = {}) {
  const response = await fetch(path, { headers: { Accept: 'application/json' }, ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.error || `the server answered ${response.status}`);
  }
  return body;
}

export const listTransactions = () => call(BASE).then((body) => body.result);

export const addTransaction = (amount, desc) =>
  call(BASE, {
    method: 'POST',
    headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
    body: JSON.stringify({ amount, desc }),
  });

export const deleteTransaction = (id) => call(`${BASE}/${encodeURIComponent(id)}`, { method: 'DELETE' });

export const deleteAllTransactions = () => call(BASE, { method: 'DELETE' });
