// The record pages in headless Chromium at a phone width (375 px) and a desktop width
// (1440 px): every page renders under the strict CSP without errors and without sideways
// scrolling, the edit form works by keyboard (type, Enter), and a screenshot of each page at
// each width is written for people to look at.
//
// Input (JSON, argv[2]): { base, cert, organisation, email, password, chromium, out, pages: [path] }
// Output: one JSON line per step on stdout; exit code 0 only if every step passed.
import { mkdirSync } from 'node:fs';
import { launch, watch } from './launch.mjs';

const cfg = JSON.parse(process.argv[2]);
const step = (name, extra = {}) => console.log(JSON.stringify({ step: name, ...extra }));
const problems = [];
mkdirSync(cfg.out, { recursive: true });

const browser = await launch(cfg);
try {
  const context = await browser.newContext({ locale: 'en-GB', viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  watch(page, problems);
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`${r.status()} for ${r.url()}`);
  });

  await page.goto(`${cfg.base}/sign-in`);
  await page.fill('#organisation', cfg.organisation);
  await page.fill('#email', cfg.email);
  await page.fill('#password', cfg.password);
  await Promise.all([page.waitForNavigation(), page.click('#sign-in button[type=submit]')]);
  step('signed in', { url: page.url() });

  for (const width of [375, 1440]) {
    await page.setViewportSize({ width, height: 900 });
    for (const path of cfg.pages) {
      await page.goto(`${cfg.base}${path}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 0) problems.push(`${path} at ${width}px scrolls sideways by ${overflow}px`);
      const name = `${path.split('/').filter(Boolean)[0] || 'root'}-${path.includes('new') ? 'new' : 'page'}-${width}.png`;
      await page.screenshot({ path: `${cfg.out}/${name}`, fullPage: true });
      step('page', { path, width, overflow });
    }
  }

  // Edit by keyboard: focus the city field, type, press Enter (submits the form).
  await page.goto(`${cfg.base}${cfg.pages[0]}`);
  await page.focus('#f-city');
  await page.keyboard.press('Control+A');
  await page.keyboard.type('Leiden');
  await Promise.all([page.waitForURL('**?done=saved'), page.keyboard.press('Enter')]);
  const status = await page.textContent('.notice.ok');
  step('edited by keyboard', { notice: status.trim() });
  const city = await page.inputValue('#f-city');
  if (city !== 'Leiden') problems.push(`city after save: ${city}`);
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
