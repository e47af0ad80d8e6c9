// Opens the web tier's DB page while the app tier cannot be reached (nginx answers 502), the
// way a user would, and reports what the page then shows:
//   node load-error.mjs BASE_URL ARTIFACT_DIR
// Prints one JSON object: the alert's text, the table body's text, whether "Loading…" is
// visible; exits non-zero when the page never shows an error.
import { chromium } from 'playwright-core';

const [baseUrl, artifactDir] = process.argv.slice(2);
const seen = {};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
  ],
});

let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
  page.setDefaultTimeout(15_000);
  const apiAnswers = [];
  page.on('response', (res) => {
    if (res.url().includes('/api/')) apiAnswers.push(`${res.request().method()} ${new URL(res.url()).pathname} ${res.status()}`);
  });
  await page.goto(`${baseUrl}/#/db`);
  const alert = page.getByRole('alert');
  await alert.waitFor();
  // Give a late re-render the chance to bring "Loading…" back.
  await page.waitForTimeout(300);
  seen.alert = (await alert.textContent()).trim();
  seen.table = (await page.getByRole('table', { name: 'transactions' }).locator('tbody').textContent()).trim();
  seen.loadingVisible = await page.getByText('Loading…').isVisible();
  seen.apiAnswers = apiAnswers;
  await page.screenshot({ path: `${artifactDir}/web-tier-load-error.png`, fullPage: true });
} catch (err) {
  failed = true;
  seen.error = String(err.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(failed ? 1 : 0);
