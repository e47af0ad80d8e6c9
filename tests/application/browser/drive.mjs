// Drives the web tier's DB page in headless Chromium, like a user would:
//   node drive.mjs BASE_URL ARTIFACT_DIR
// Prints one JSON object of what it saw (the rows after each step, the API calls, the
// Content-Security-Policy violations, whether an injected inline script runs); exits non-zero
// when a step fails.
import { chromium } from 'playwright-core';

const [baseUrl, artifactDir] = process.argv.slice(2);
const STEP_TIMEOUT_MS = 15_000;
const seen = { steps: [] };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
  ],
});

async function rows(page) {
  return page.locator('[data-testid="transaction"]').evaluateAll((trs) =>
    trs.map((tr) => Array.from(tr.querySelectorAll('td')).slice(0, 3).map((td) => td.textContent.trim())),
  );
}

async function step(name, page, action) {
  await action();
  const snapshot = { name, rows: await rows(page) };
  seen.steps.push(snapshot);
  await page.screenshot({ path: `${artifactDir}/web-tier-${seen.steps.length}-${name}.png`, fullPage: true });
}

let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const apiCalls = [];
  const cspViolations = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && msg.text().includes('Content Security Policy')) cspViolations.push(msg.text());
  });
  page.on('request', (req) => {
    if (req.url().includes('/api/')) apiCalls.push(`${req.method()} ${new URL(req.url()).pathname}`);
  });

  await step('architecture', page, async () => {
    await page.goto(`${baseUrl}/`);
    await page.getByRole('heading', { name: 'AWS three-tier web architecture' }).waitFor();
  });
  await step('list', page, async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'DB Demo' }).click();
    await page.locator('[data-testid="transaction"]', { hasText: 'groceries' }).waitFor();
  });
  await step('added', page, async () => {
    await page.getByLabel('amount').fill('123.45');
    await page.getByLabel('description').fill('browser test');
    await page.getByRole('button', { name: 'Add' }).click();
    await page.locator('[data-testid="transaction"]', { hasText: 'browser test' }).waitFor();
  });
  await step('deleted-one', page, async () => {
    const row = page.locator('[data-testid="transaction"]', { hasText: 'browser test' });
    await row.getByRole('button', { name: 'Delete' }).click();
    await row.waitFor({ state: 'detached' });
  });
  await step('deleted-all', page, async () => {
    await page.getByRole('button', { name: 'Delete all' }).click();
    await page.getByText('No transactions.').waitFor();
  });
  seen.apiCalls = apiCalls;
  seen.cspViolations = [...cspViolations];
  // Last, as it is itself a violation when the policy holds: an inline script injected into
  // the page (what an XSS would do) must not run. (Playwright's own evaluate is exempt from
  // the page's policy, so the probe is a <script> element the page itself then runs, or not.)
  seen.inlineScriptProbe = await page.evaluate(async () => {
    const script = document.createElement('script');
    script.textContent = 'window.__threetierInlineRan = true;';
    document.head.appendChild(script);
    await new Promise((resolve) => setTimeout(resolve, 100));
    return window.__threetierInlineRan === true ? 'ran' : 'blocked';
  });
} catch (err) {
  failed = true;
  seen.error = String(err.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(failed ? 1 : 0);
