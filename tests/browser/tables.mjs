// The app shell and a record table in headless Chromium, at 375 px and 1440 px wide: no
// horizontal page scroll on a phone, every navigation entry reachable, the skip link is the
// first thing the keyboard reaches and moves focus to the content, the global search box and
// the table search find a record by a fragment of its (sealed) name. Any CSP violation or
// script error fails the run. Screenshots go to cfg.artifacts when given.
//
// Input (JSON, argv[2]): { base, cert, organisation, email, password, chromium, artifacts? }
// Output: one JSON line per step on stdout; exit code 0 only if every step passed.
import { mkdirSync } from 'node:fs';
import { launch, watch } from './launch.mjs';

const cfg = JSON.parse(process.argv[2]);
const step = (name, extra = {}) => console.log(JSON.stringify({ step: name, ...extra }));
const problems = [];
const shot = async (page, name) => {
  if (!cfg.artifacts) return;
  mkdirSync(cfg.artifacts, { recursive: true });
  await page.screenshot({ path: `${cfg.artifacts}/${name}.png`, fullPage: true });
};

const browser = await launch(cfg);
try {
  const context = await browser.newContext({ locale: 'en-GB', viewport: { width: 375, height: 800 } });
  const page = await context.newPage();
  watch(page, problems);

  await page.goto(`${cfg.base}/sign-in`);
  await page.fill('#organisation', cfg.organisation);
  await page.fill('#email', cfg.email);
  await page.fill('#password', cfg.password);
  await Promise.all([page.waitForURL('**/account'), page.click('#sign-in button[type=submit]')]);
  await page.goto(`${cfg.base}/`);
  if (!page.url().endsWith('/contacts')) problems.push(`/ went to ${page.url()}`);
  step('signed in', { url: page.url() });

  // A phone: the page itself never scrolls sideways, and every nav entry is on screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) problems.push(`375 px: page scrolls ${overflow} px sideways`);
  const links = await page.$$eval('nav.app-nav a', (as) => as.map((a) => {
    const r = a.getBoundingClientRect();
    return { text: a.textContent.trim(), left: r.left, right: r.right, w: r.width, h: r.height };
  }));
  if (links.length < 8) problems.push(`nav has ${links.length} entries`);
  for (const l of links) {
    if (l.left < 0 || l.right > 375 || l.w === 0 || l.h === 0) problems.push(`nav entry off screen: ${JSON.stringify(l)}`);
  }
  step('375 px', { overflow, nav: links.map((l) => l.text) });
  await shot(page, 'contacts-375');

  // Keyboard: the first Tab reaches the skip link, Enter moves to the content.
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement && document.activeElement.className);
  if (first !== 'skip-link') problems.push(`first Tab reached ${first}`);
  await page.keyboard.press('Enter');
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  if (focused !== 'main') problems.push(`skip link moved focus to ${focused}`);
  step('skip link', { first, focused });

  // The global search box, by keyboard.
  await page.fill('#global-q', 'janss');
  await Promise.all([page.waitForURL('**/search?q=janss'), page.press('#global-q', 'Enter')]);
  const found = await page.textContent('main');
  if (!found.includes('Jan Janssen')) problems.push('global search did not find Jan Janssen');
  step('global search', { url: page.url() });
  await shot(page, 'search-375');

  // The table's own search, on a wide screen.
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(`${cfg.base}/contacts`);
  await page.fill('#tbl-q', 'acme');
  await Promise.all([page.waitForURL('**/contacts?q=acme*'), page.press('#tbl-q', 'Enter')]);
  const rows = await page.$$eval('#records tbody tr', (trs) => trs.map((tr) => tr.textContent.replace(/\s+/g, ' ').trim()));
  if (rows.length !== 1 || !rows[0].includes('Piet')) problems.push(`table search rows: ${JSON.stringify(rows)}`);
  step('table search', { rows });
  await page.goto(`${cfg.base}/contacts`);
  await shot(page, 'contacts-1440');
  await page.goto(`${cfg.base}/lang/nl?next=/deals`);
  const amount = await page.textContent('#records');
  if (!amount.includes('€ 1.234,50')) problems.push('Dutch amount missing on /deals');
  await shot(page, 'deals-nl-1440');
  step('deals nl');
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
