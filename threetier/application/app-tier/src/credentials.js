// Database credentials. Production: the RDS-managed master secret in Secrets Manager
// (JSON with "username" and "password"), fetched with the instance role at start-up and
// again whenever the database rejects the current password (the managed secret rotates).
// Local runs and tests may set THREETIER_DB_CREDENTIALS to the same JSON shape instead.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

export function parseCredentials(text, origin) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${origin} is not JSON`);
  }
  if (!value || typeof value.username !== 'string' || typeof value.password !== 'string') {
    throw new Error(`${origin} must hold "username" and "password" strings`);
  }
  return { username: value.username, password: value.password };
}

/** Returns an async function that yields {username, password}. */
export function credentialSource(database, env = process.env) {
  if (env.THREETIER_DB_CREDENTIALS) {
    const fixed = parseCredentials(env.THREETIER_DB_CREDENTIALS, 'THREETIER_DB_CREDENTIALS');
    return async () => fixed;
  }
  if (!database.secretArn) {
    throw new Error('invalid app configuration: database.secretArn is required');
  }
  // Bounded waits: an endpoint that does not answer must fail the attempt (the app retries
  // in the background) rather than hold the schema creation forever.
  const client = new SecretsManagerClient({
    region: database.region,
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 3000, requestTimeout: 5000, throwOnRequestTimeout: true },
  });
  return async () => {
    const out = await client.send(new GetSecretValueCommand({ SecretId: database.secretArn }));
    if (typeof out.SecretString !== 'string') throw new Error('the database secret has no SecretString');
    return parseCredentials(out.SecretString, `secret ${database.secretArn}`);
  };
}
