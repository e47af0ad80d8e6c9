import { useCallback, useEffect, useState } from 'react';
import { addTransaction, deleteAllTransactions, deleteTransaction, listTransactions } from './api.js';

const money = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export default function Transactions() {
  const [rows, setRows] = useState(null); // null until the first list arrives
  const [loadFailed, setLoadFailed] = useState(false);
  const [error, setError] = useState('');
  const [amount, setAmount] = useState('');
  const [desc, setDesc] = useState('');
  const [busy, setBusy] = useState(false);

  const refresh = useCallback(async () => {
    setLoadFailed(false);
    try {
      setRows(await listTransactions());
      setError('');
    } catch (err) {
      setLoadFailed(true);
      setError(`Could not load transactions: ${err.message}`);
    }
  }, []);

  useEffect(() => {
    refresh();
  }, [refresh]);

  async function run(action) {
    setBusy(true);
    try {
      await action();
      await refresh();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  }

  function onAdd(event) {
    event.preventDefault();
    const value = Number(amount);
    if (amount.trim() === '' || !Number.isFinite(value) || desc.trim() === '') {
      setError('Enter a numeric amount and a description.');
      return;
    }
    run(async () => {
      // The amount as typed: the app tier rounds the decimal itself, as the database does
      // ("1.005" is 1.01), which a double (1.00499...) would not.
      await addTransaction(amount.trim(), desc.trim());
      setAmount('');
      setDesc('');
    });
  }

  return (
    <section>
      <h1>Transactions</h1>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <form className="add" onSubmit={onAdd} aria-label="add transaction">
        <input aria-label="amount" inputMode="decimal" placeholder="Amount" value={amount} onChange={(e) => setAmount(e.target.value)} />
        <input aria-label="description" maxLength={100} placeholder="Description" value={desc} onChange={(e) => setDesc(e.target.value)} />
        <button type="submit" disabled={busy}>
          Add
        </button>
      </form>
      <table aria-label="transactions">
        <thead>
          <tr>
            <th>ID</th>
            <th className="num">Amount</th>
            <th>Description</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rows === null && (
            <tr>
              <td colSpan={4}>{loadFailed ? 'Could not load transactions.' : 'Loading…'}</td>
            </tr>
          )}
          {rows?.length === 0 && (
            <tr>
              <td colSpan={4}>No transactions.</td>
            </tr>
          )}
          {rows?.map((row) => (
            <tr key={row.id} data-testid="transaction">
              <td>{row.id}</td>
              <td className="num">{money.format(row.amount)}</td>
              <td>{row.description}</td>
              <td>
                <button type="button" disabled={busy} aria-label={`delete ${row.id}`} onClick={() => run(() => deleteTransaction(row.id))}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button type="button" className="danger" disabled={busy || !rows?.length} onClick={() => run(deleteAllTransactions)}>
        Delete all
      </button>
    </section>
  );
}
