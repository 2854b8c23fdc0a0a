// The dashboard's numbers (scripts/bench-web.sh starts the hub, delegate and target it needs):
//  1. JavaScript size: every chunk raw and gzipped, what the first page needs, the 400 KB budget.
//  2. First load on loopback: cold (empty cache) and warm, signed out (login form) and signed in
//     (runs page rendered), over BENCH_LOADS fresh browser contexts.
//  3. The live run view under BENCH_RATE probe checks per second: frames per second, long tasks
//     and how far the page's check count trails the hub's.
import { readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { launch, need, newPage } from './browser.mjs';

const HUB = need('HUB_URL');
const EMAIL = need('ADMIN_EMAIL');
const PASSWORD = need('ADMIN_PASSWORD');
const LOADS = Number(process.env.BENCH_LOADS ?? 10);
const TEMPLATE = process.env.BENCH_TEMPLATE_ID; // a template whose probe runs at BENCH_RATE/s
const RATE = Number(process.env.BENCH_RATE ?? 50);
const BUDGET = 400 * 1024;

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

// 1. Size.
const dist = new URL('../dist/', import.meta.url);
const index = readFileSync(new URL('index.html', dist), 'utf8');
let total = 0;
let initial = 0;
console.log('chunk                                  raw        gzip   loaded');
for (const f of readdirSync(new URL('assets/', dist)).sort()) {
  if (!f.endsWith('.js') && !f.endsWith('.css')) continue;
  const raw = readFileSync(new URL(`assets/${f}`, dist));
  const gz = gzipSync(raw).length;
  const first = index.includes(`/assets/${f}`);
  if (f.endsWith('.js')) {
    total += gz;
    if (first) initial += gz;
  }
  console.log(`${f.padEnd(38)} ${kb(raw.length).padStart(9)} ${kb(gz).padStart(10)}   ${first ? 'first page' : 'on demand'}`);
}
console.log(`JavaScript gzipped: ${kb(total)} in all, ${kb(initial)} for the first page (budget ${kb(BUDGET)}): ${total <= BUDGET ? 'within' : 'OVER'}`);

// 2. First load.
const browser = await launch();
async function timeLoad(signedIn, warm) {
  const { context, page } = await newPage(browser);
  if (signedIn) {
    const r = await page.request.post(`${HUB}/auth/login`, { data: { email: EMAIL, password: PASSWORD } });
    if (!r.ok()) throw new Error(`login: ${r.status()}`);
  }
  const url = signedIn ? `${HUB}/p/default/runs` : `${HUB}/`;
  // Signed in: until the runs list (or its empty state) is drawn, not just the frame.
  const ready = signedIn ? 'table[aria-label="Runs"], .empty' : 'input[type=email]';
  if (warm) {
    await page.goto(url);
    await page.waitForSelector(ready);
  }
  await page.goto(url);
  await page.waitForSelector(ready);
  // Time from navigation start until the page showed what the user came for.
  const ms = await page.evaluate(() => performance.now());
  await context.close();
  return ms;
}
for (const signedIn of [false, true]) {
  for (const warm of [false, true]) {
    const xs = [];
    for (let i = 0; i < LOADS; i++) xs.push(await timeLoad(signedIn, warm));
    console.log(
      `first load, ${signedIn ? 'signed in (runs page)' : 'signed out (login form)'}, ${warm ? 'warm' : 'cold'} cache: ` +
        `p50 ${pct(xs, 50).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms over ${LOADS} loads`,
    );
  }
}

// 3. The live view under load.
if (TEMPLATE) {
  const { page, problems } = await newPage(browser);
  await page.request.post(`${HUB}/auth/login`, { data: { email: EMAIL, password: PASSWORD } });
  const gql = async (query, variables) => {
    const r = await page.request.post(`${HUB}/graphql`, { data: { query, variables } });
    const body = await r.json();
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const { startRun } = await gql('mutation($t: ID!) { startRun(templateId: $t) { id } }', { t: TEMPLATE });
  await page.goto(`${HUB}/p/default/runs/${startRun.id}`);
  await page.getByTestId('probe-feed').waitFor({ timeout: 30_000 });
  await page.evaluate(() => {
    const w = window;
    w.__bench = { frames: [], long: [] };
    let last = performance.now();
    const tick = (t) => {
      w.__bench.frames.push(t - last);
      last = t;
      w.__bench.raf = requestAnimationFrame(tick);
    };
    w.__bench.raf = requestAnimationFrame(tick);
    new PerformanceObserver((l) => l.getEntries().forEach((e) => w.__bench.long.push(e.duration))).observe({ type: 'longtask', buffered: false });
  });
  const lags = [];
  for (;;) {
    await page.waitForTimeout(1000);
    const [{ run }, shown] = await Promise.all([
      gql('query($id: ID!) { run(id: $id) { status probeTally { total } } }', { id: startRun.id }),
      page.getByTestId('live-tally').innerText().catch(() => ''),
    ]);
    // "N passed · M failed · T checks"
    const n = Number((shown.match(/(\d+) checks/) ?? [])[1]);
    if (shown) lags.push(run.probeTally.total - n);
    if (['PASSED', 'FAILED', 'ABORTED', 'ERROR'].includes(run.status)) break;
  }
  const b = await page.evaluate(() => {
    cancelAnimationFrame(window.__bench.raf);
    return window.__bench;
  });
  const frames = b.frames.slice(1);
  const worstFrame = Math.max(...frames);
  const fps = 1000 / (frames.reduce((a, x) => a + x, 0) / frames.length);
  const { run } = await gql('query($id: ID!) { run(id: $id) { probeTally { total } startedAt endedAt } }', { id: startRun.id });
  const secs = (Date.parse(run.endedAt) - Date.parse(run.startedAt)) / 1000;
  console.log(
    `live view at ${RATE}/s asked (${(run.probeTally.total / secs).toFixed(1)} checks/s measured over ${secs.toFixed(1)} s, ${run.probeTally.total} checks): ` +
      `mean ${fps.toFixed(1)} fps, worst frame ${worstFrame.toFixed(0)} ms, ${b.long.length} long tasks (longest ${Math.max(0, ...b.long).toFixed(0)} ms), ` +
      `page behind the hub by p50 ${lags.length ? pct(lags, 50) : '?'} / max ${lags.length ? Math.max(...lags) : '?'} checks (sampled each second)`,
  );
  if (problems.length) console.log(`console problems: ${problems.join('; ')}`);
}
await browser.close();
