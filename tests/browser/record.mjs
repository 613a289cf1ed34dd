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
    if (r.status() >= 400 && r.status() !== 409 && !r.url().endsWith('/favicon.ico')) problems.push(`${r.status()} for ${r.url()}`);
  });

  const signIn = async (p) => {
    await p.goto(`${cfg.base}/sign-in`);
    await p.fill('#organisation', cfg.organisation);
    await p.fill('#email', cfg.email);
    await p.fill('#password', cfg.password);
    await Promise.all([p.waitForNavigation(), p.click('#sign-in button[type=submit]')]);
  };
  await signIn(page);
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

  // A second session changes the city while this page is open; saving here then shows both
  // values, and applying ours works on the new revision.
  const other = await browser.newContext({ locale: 'en-GB' });
  const page2 = await other.newPage();
  watch(page2, problems);
  await signIn(page2);
  await page2.goto(`${cfg.base}${cfg.pages[0]}`);
  await page2.fill('#f-city', 'Gouda');
  await Promise.all([page2.waitForURL('**?done=saved'), page2.click('#save')]);
  step('other session saved');
  await page.fill('#f-city', 'Haarlem');
  const [conflict] = await Promise.all([page.waitForNavigation(), page.click('#save')]);
  if (conflict.status() !== 409) problems.push(`conflicting save answered ${conflict.status()}`);
  const yours = (await page.textContent('#conflict .conflict-yours')).trim();
  const stored = (await page.textContent('#conflict .conflict-stored')).trim();
  if (yours !== 'Haarlem' || stored !== 'Gouda') problems.push(`conflict shows ${yours} / ${stored}`);
  step('conflict shown', { yours, stored });
  for (const width of [375, 1440]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: `${cfg.out}/contacts-conflict-${width}.png`, fullPage: true });
  }
  await Promise.all([page.waitForURL('**?done=saved'), page.click('#save')]);
  const applied = await page.inputValue('#f-city');
  if (applied !== 'Haarlem') problems.push(`city after applying: ${applied}`);
  step('applied on the new revision', { city: applied });
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
