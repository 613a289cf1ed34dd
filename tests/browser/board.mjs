// The deals board in headless Chromium: drag a deal to the next stage (board.js, HTML5 drag
// and drop), then move it back with the keyboard only (the focus returns to the moved card;
// Tab to its "previous stage" button, Enter). After each move the API is read (same-origin
// GET with the session cookie) to check what was stored. Any CSP violation or page error
// fails the run.
//
// Input (JSON, argv[2]): { base, cert, organisation, email, password, deal, from, to, chromium }
// Output: one JSON line per step on stdout; exit code 0 only if every step passed.
import { launch, watch } from './launch.mjs';

const cfg = JSON.parse(process.argv[2]);
const step = (name, extra = {}) => console.log(JSON.stringify({ step: name, ...extra }));
const problems = [];

async function stageOf(page) {
  return page.evaluate(async (id) => {
    const r = await fetch(`/api/v1/deals/${id}`, { credentials: 'same-origin' });
    const v = await r.json();
    return v.deal.stage_id;
  }, cfg.deal);
}

// A move posts the card's form; the answer redirects to the board again (same URL each time),
// so wait for that page's main document itself, then for it to finish loading.
async function moved(page, action) {
  const nav = page.waitForEvent('framenavigated', {
    predicate: (f) => f === page.mainFrame() && f.url().includes('done=moved'),
  });
  await action();
  await nav;
  await page.waitForLoadState('load');
}

const browser = await launch(cfg);
try {
  const context = await browser.newContext({ locale: 'en-GB', viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  watch(page, problems);
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) step('navigated', { url: f.url().replace(cfg.base, '') }); });

  await page.goto(`${cfg.base}/sign-in`);
  await page.fill('#organisation', cfg.organisation);
  await page.fill('#email', cfg.email);
  await page.fill('#password', cfg.password);
  await Promise.all([page.waitForURL('**/account'), page.click('#sign-in button[type=submit]')]);
  step('signed in');

  await page.goto(`${cfg.base}/deals/board`);
  const card = `#card-${cfg.deal}`;
  const inFrom = await page.locator(`.board-col[data-stage="${cfg.from}"] ${card}`).count();
  if (inFrom !== 1) problems.push('the deal is not in its first stage on the board');
  step('board', { title: await page.title() });

  // Drag the card onto the next column.
  await moved(page, () => page.dragAndDrop(`${card} .card-meta`, `.board-col[data-stage="${cfg.to}"] h2`));
  const afterDrag = await page.locator(`.board-col[data-stage="${cfg.to}"] ${card}`).count();
  if (afterDrag !== 1) problems.push('after the drag the card is not in the next column');
  const stored = await stageOf(page);
  if (stored !== cfg.to) problems.push(`after the drag the API says stage ${stored}`);
  step('dragged', { stage: stored });

  // The moved card has the keyboard focus; Tab reaches its link, then "previous stage".
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  if (focused !== `card-${cfg.deal}`) problems.push(`focus after the move is on ${focused}`);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  const onPrev = await page.evaluate(() => document.activeElement.classList.contains('move-prev'));
  if (!onPrev) problems.push('Tab from the card does not reach the previous-stage button');
  await moved(page, () => page.keyboard.press('Enter'));
  const back = await stageOf(page);
  if (back !== cfg.from) problems.push(`after the keyboard move the API says stage ${back}`);
  const inFromAgain = await page.locator(`.board-col[data-stage="${cfg.from}"] ${card}`).count();
  if (inFromAgain !== 1) problems.push('after the keyboard move the card is not back in the first column');
  step('moved back by keyboard', { stage: back });

  // Narrow screens: the board still works (columns stacked), nothing overflows the page.
  await page.setViewportSize({ width: 375, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  if (overflow) problems.push('the board overflows at 375 px');
  step('narrow', { overflow });

  // The other pages of this slice under the real CSP: charts, wizard, error page.
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(`${cfg.base}/dashboard`);
  const charts = await page.locator('svg.chart[role=img]').count();
  if (charts !== 4) problems.push(`dashboard shows ${charts} charts`);
  await page.goto(`${cfg.base}/import`);
  if ((await page.locator('#import-upload input[type=file]').count()) !== 1) problems.push('no upload form');
  const missing = await page.goto(`${cfg.base}/no-such-page`);
  if (missing.status() !== 404) problems.push(`unknown page answered ${missing.status()}`);
  step('other pages', { charts });
} catch (e) {
  problems.push(`step failed: ${e.message}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.log(JSON.stringify({ failed: problems }));
  process.exit(1);
}
console.log(JSON.stringify({ ok: true }));
