// Schedules end to end, in real headless Chromium against a real hub, Postgres and delegate that
// tests/tests/e2e/web.rs starts (a template to schedule is already stored): from the template's
// page, "Schedule…" opens the form with it picked; the cron helper shows the hub's message for a
// bad expression and a bad zone, then the words and next fires of one firing every 2 s in Tokyo;
// the new schedule's page lists its next fires, then a fired run in its history, which opens with
// its schedule named; "All its runs" lists only its runs; the list shows the next fire in both
// zones and pauses it. Each page is screenshotted into $SHOTS. Any console error or uncaught
// exception fails the test.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { launch, need, newPage, signIn } from './browser.mjs';

const HUB = need('HUB_URL');
const EMAIL = need('ADMIN_EMAIL');
const PASSWORD = need('ADMIN_PASSWORD');
const DELEGATE = need('DELEGATE_NAME');
const TEMPLATE = need('TEMPLATE_NAME');
const TEMPLATE_ID = need('TEMPLATE_ID');
const SHOTS = need('SHOTS');
mkdirSync(SHOTS, { recursive: true });

const NAME = 'every-2s';
// Not the browser's zone (UTC here), so times show in both.
const ZONE = 'Asia/Tokyo';

let shot = 0;
async function screenshot(page, name) {
  shot += 1;
  const path = `${SHOTS}/${String(shot).padStart(2, '0')}-${name}.png`;
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}

const nav = (page, name) => page.locator('.topbar nav').getByRole('link', { name, exact: true });

function step(what) {
  console.log(`step: ${what}`);
}

const browser = await launch();
const { page, problems } = await newPage(browser);
page.setDefaultTimeout(20_000);
try {
  step('sign in');
  await signIn(page, HUB, EMAIL, PASSWORD);

  step('the template page has no schedule yet; "Schedule…" opens the form with the template picked');
  await nav(page, 'Templates').click();
  await page.getByRole('link', { name: TEMPLATE }).first().click();
  const panel = page.locator('.tpl-schedules');
  await panel.getByText('No schedule runs this template.').waitFor();
  await panel.getByRole('button', { name: 'Schedule…' }).click();
  await page.waitForURL(/\/schedules\/new\?template=/);
  const form = page.getByRole('form', { name: 'New schedule' });
  await form.getByRole('option', { name: TEMPLATE }).waitFor({ state: 'attached' });
  assert.equal(await form.getByLabel('Template', { exact: true }).inputValue(), TEMPLATE_ID);
  const zone = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
  assert.equal(await form.getByLabel('Time zone', { exact: true }).inputValue(), zone, 'the browser zone by default');

  step('the cron helper: the hub refuses a bad expression naming the field');
  const cron = form.getByLabel('Cron', { exact: true });
  const preview = page.getByTestId('cron-preview');
  await cron.fill('* * *');
  await preview.getByRole('alert').waitFor();
  assert.match(await preview.getByRole('alert').innerText(), /^cron: 3 fields/);
  assert.equal(await cron.getAttribute('aria-invalid'), 'true');
  await screenshot(page, 'schedule-cron-error');

  step('a preset, then every 2 s: the words and the next 5 fires');
  await form.getByRole('button', { name: 'Every hour' }).click();
  assert.equal(await cron.inputValue(), '0 * * * *');
  await preview.getByTestId('cron-description').waitFor();
  const hourly = await preview.getByTestId('cron-description').innerText();
  await cron.fill('*/2 * * * * *');
  await page.waitForFunction(
    (before) => {
      const d = document.querySelector('[data-testid="cron-description"]');
      return d && d.textContent !== before;
    },
    hourly,
  );
  const fires = preview.getByTestId('next-fire');
  assert.equal(await fires.count(), 5);
  const times = await fires.locator('time').evaluateAll((ts) => ts.map((t) => Date.parse(t.getAttribute('datetime'))));
  assert.deepEqual(
    times.slice(1).map((t, i) => t - times[i]),
    [2000, 2000, 2000, 2000],
    `fires 2 s apart: ${times}`,
  );
  step('a zone the hub does not know is refused naming the field; another zone shows both clocks');
  const tz = form.getByLabel('Time zone', { exact: true });
  await tz.fill('Mars/Olympus');
  await preview.getByRole('alert').getByText(/^timezone: /).waitFor();
  assert.equal(await tz.getAttribute('aria-invalid'), 'true');
  await tz.fill(ZONE);
  await preview.getByTestId('cron-description').getByText(`(${ZONE})`).waitFor();
  assert.match(await fires.first().innerText(), /your time/);
  await form.getByLabel('Name', { exact: true }).fill(NAME);
  await form.getByLabel('Delegate', { exact: true }).fill(DELEGATE);
  await screenshot(page, 'schedule-new');
  await form.getByRole('button', { name: 'Create schedule' }).click();

  step('its page lists the next fires, then a fired run in its history');
  await page.waitForURL(/\/schedules\/[0-9a-f-]{36}$/);
  const schedulePage = page.url();
  await page.getByRole('heading', { name: NAME }).waitFor();
  assert.equal(await page.getByTestId('next-fire').count(), 5);
  const started = page.locator('[data-testid="fire-row"][data-outcome="STARTED"]');
  await started.first().waitFor({ timeout: 30_000 });
  await screenshot(page, 'schedule-history');
  const runLink = started.first().getByRole('link', { name: /^Run / });
  const runId = (await runLink.getAttribute('aria-label')).replace(/^Run /, '');
  await runLink.click();
  await page.waitForURL(new RegExp(`/runs/${runId}$`));
  const by = page.getByTestId('run-schedule');
  await by.waitFor();
  assert.equal(await by.innerText(), `schedule: ${NAME}`);
  await page.getByTestId('run-status').waitFor();
  await screenshot(page, 'scheduled-run');
  await by.click();
  await page.waitForURL(schedulePage);

  step('"All its runs": the runs list filtered by the schedule, each run naming it');
  await page.getByRole('link', { name: 'All its runs' }).click();
  await page.waitForURL(/\/runs\?schedule=[0-9a-f-]{36}$/);
  await page.getByTestId('schedule-filter').getByRole('link', { name: NAME }).waitFor();
  await page.getByTestId('run-row').first().waitFor();
  const names = await page.getByTestId('run-row').evaluateAll((rows) =>
    rows.map((r) => r.querySelector('[data-testid="run-schedule"]')?.textContent),
  );
  assert.ok(names.length > 0 && names.every((n) => n === `schedule: ${NAME}`), `only its runs: ${names}`);
  await screenshot(page, 'schedule-runs');

  step('the schedules list: next fire in two zones, last fire, then pause it');
  await nav(page, 'Schedules').click();
  const row = page.locator(`[data-testid="schedule-row"][data-schedule="${NAME}"]`);
  await row.waitFor();
  await row.getByTestId('last-fire').locator('[data-outcome]').waitFor();
  await row.getByTestId('next-fire-at').locator(`[data-zone="${ZONE}"]`).waitFor();
  assert.match(await row.getByTestId('next-fire-at').innerText(), new RegExp(`in ${ZONE}`));
  await screenshot(page, 'schedules');
  await row.getByRole('button', { name: `Pause ${NAME}` }).click();
  await row.locator('[data-enabled="false"]').waitFor();
  await row.getByRole('button', { name: `Resume ${NAME}` }).waitFor();
  await screenshot(page, 'schedules-paused');

  step('the template page lists it');
  await nav(page, 'Templates').click();
  await page.getByRole('link', { name: TEMPLATE }).first().click();
  await panel.getByRole('link', { name: NAME }).waitFor();

  assert.deepEqual(problems, [], 'no console errors or page errors');
  console.log('schedules e2e: PASSED');
} catch (e) {
  await screenshot(page, 'failure').catch(() => {});
  console.error(`schedules e2e: FAILED: ${e.stack ?? e}`);
  if (problems.length) console.error(`console problems:\n${problems.join('\n')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
