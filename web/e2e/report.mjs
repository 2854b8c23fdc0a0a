// The run report from the dashboard, in real headless Chromium against a real hub, Postgres and
// delegate that tests/tests/e2e/web.rs starts (a run of theirs has finished): the run view's
// "Report" link opens the hub's report in a new tab with the run's verdict, score and plot, which
// is screenshotted into $SHOTS; the same page reads the same with JavaScript off and prints to
// A4; the "PDF" link downloads the PDF. Any console error or uncaught exception (a Content
// Security Policy violation of the report included) fails the test.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { launch, need, newPage, signIn } from './browser.mjs';

const HUB = need('HUB_URL');
const EMAIL = need('ADMIN_EMAIL');
const PASSWORD = need('ADMIN_PASSWORD');
const RUN_ID = need('RUN_ID');
const STATUS = need('RUN_STATUS');
const SCORE = need('RUN_SCORE');
const SHOTS = need('SHOTS');
mkdirSync(SHOTS, { recursive: true });

function step(what) {
  console.log(`step: ${what}`);
}

/** Records console errors and page errors of another page (a tab the test opened). */
function watch(page, problems, tag) {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${tag} console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${tag} page error: ${e.message}`));
}

const browser = await launch();
const { context, page, problems } = await newPage(browser);
page.setDefaultTimeout(20_000);
try {
  step('sign in and open the finished run by its 8-character id');
  await signIn(page, HUB, EMAIL, PASSWORD);
  await page.goto(`${HUB}/p/default/runs/${RUN_ID.slice(0, 8)}`);
  await page.getByTestId('score').waitFor();

  step('"Report" opens the report in a new tab');
  const [report] = await Promise.all([
    context.waitForEvent('page'),
    page.getByRole('link', { name: 'Report', exact: true }).click(),
  ]);
  watch(report, problems, 'report');
  await report.waitForLoadState('load');
  assert.equal(new URL(report.url()).pathname, `/runs/${RUN_ID}/report`);
  assert.match(await report.title(), new RegExp(`^Run report: .* — ${STATUS}$`));
  assert.equal(await report.getByTestId('verdict').first().innerText(), STATUS);
  assert.equal(await report.getByTestId('score').innerText(), SCORE);
  const plot = report.locator('svg[data-testid="latency-plot"]');
  assert.ok(await plot.isVisible(), 'the latency plot is drawn');
  assert.ok((await plot.locator('[data-testid="fault-band"]').count()) >= 1, 'a fault window');
  assert.ok((await plot.boundingBox()).width > 600, 'the plot spans the page');
  const shot = `${SHOTS}/report.png`;
  await report.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot ${shot}`);

  step('it prints: A4 pages');
  await report.emulateMedia({ media: 'print' });
  const printed = `${SHOTS}/report-printed.pdf`;
  await report.pdf({ path: printed, format: 'A4', printBackground: true });
  assert.equal(readFileSync(printed).subarray(0, 5).toString(), '%PDF-');

  step('the same page with JavaScript off');
  const noJs = await browser.newContext({
    javaScriptEnabled: false,
    ignoreHTTPSErrors: true,
    storageState: await context.storageState(),
  });
  const plain = await noJs.newPage();
  watch(plain, problems, 'no-js');
  await plain.goto(report.url());
  assert.equal(await plain.getByTestId('verdict').first().innerText(), STATUS);
  assert.ok(await plain.locator('svg[data-testid="latency-plot"]').isVisible());
  await noJs.close();

  step('"PDF" downloads the report as a PDF');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'PDF', exact: true }).click(),
  ]);
  assert.equal(download.suggestedFilename(), `faultline-run-${RUN_ID.slice(0, 8)}.pdf`);
  const file = `${SHOTS}/downloaded.pdf`;
  await download.saveAs(file);
  assert.equal(readFileSync(file).subarray(0, 5).toString(), '%PDF-');

  assert.deepEqual(problems, [], 'no console errors or page errors');
  console.log('report e2e: PASSED');
} catch (e) {
  await page.screenshot({ path: `${SHOTS}/failure.png`, fullPage: true }).catch(() => {});
  console.error(`report e2e: FAILED: ${e.stack ?? e}`);
  if (problems.length) console.error(`console problems:\n${problems.join('\n')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
