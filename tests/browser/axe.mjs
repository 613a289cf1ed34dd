// Accessibility proof: every page of the web app, signed in as each given user (and signed
// out for the sign-in page), at 375 px and 1440 px, checked by axe-core against WCAG 2.1 A and
// AA. Any "serious" or "critical" violation fails the run and is printed with its selectors.
// Every page is also screenshotted (full page) at both widths into cfg.artifacts.
// Any CSP violation or script error on a page fails the run too (launch.mjs's watch), and a
// page that answers with another status than the one expected fails it.
//
// How axe gets into the page: the pages send a strict CSP (script-src 'self'), so
// playwright's addScriptTag (an inline <script> element) would be refused, rightly. We hand
// axe's source to page.evaluate instead: that runs through the DevTools protocol
// (Runtime.evaluate), which the page's CSP does not govern, exactly as @axe-core/playwright
// does. So the context keeps the real CSP (no bypassCSP): a page that only works with a
// relaxed policy still fails here.
//
// Input (JSON, argv[2]): { base, cert, chromium, artifacts,
//   users: [{ name, organisation?, email?, password?, pages: [{ name, path, status }] }] }
// (a user without an email is the signed-out visitor).
// Output: one JSON line per page and width; exit code 0 only if nothing was found.
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { launch, watch } from './launch.mjs';

const cfg = JSON.parse(process.argv[2]);
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [375, 1440];
const problems = [];
let checked = 0;
mkdirSync(cfg.artifacts, { recursive: true });

async function signIn(page, u) {
  await page.goto(`${cfg.base}/sign-in`);
  await page.fill('#organisation', u.organisation);
  await page.fill('#email', u.email);
  await page.fill('#password', u.password);
  await Promise.all([page.waitForURL('**/account'), page.click('#sign-in button[type=submit]')]);
}

async function audit(page, u, p, width) {
  const where = `${u.name} ${p.path} @${width}`;
  await page.setViewportSize({ width, height: width < 800 ? 800 : 900 });
  const resp = await page.goto(`${cfg.base}${p.path}`);
  const status = resp ? resp.status() : 0;
  if (status !== p.status) problems.push(`${where}: status ${status}, expected ${p.status}`);
  await page.screenshot({ path: `${cfg.artifacts}/${u.name}-${p.name}-${width}.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) {
    // Name the culprits: the outermost elements reaching past the right edge that no
    // narrower scroll container clips.
    const wide = await page.evaluate(() => {
      const w = window.innerWidth + 0.5;
      const out = [];
      for (const el of document.querySelectorAll('body *')) {
        if (el.getBoundingClientRect().right <= w) continue;
        const parent = el.parentElement;
        if (parent !== document.body && parent.getBoundingClientRect().right > w) continue;
        let clipped = false;
        for (let p = parent; p && p !== document.body; p = p.parentElement) {
          if (getComputedStyle(p).overflowX !== 'visible' && p.getBoundingClientRect().right <= w) { clipped = true; break; }
        }
        if (clipped) continue;
        const id = el.id ? `#${el.id}` : '';
        const cls = el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
        out.push(`${el.tagName.toLowerCase()}${id}${cls} in ${parent.tagName.toLowerCase()} (right ${Math.round(el.getBoundingClientRect().right)})`);
        if (out.length >= 5) break;
      }
      return out;
    });
    problems.push(`${where}: page scrolls ${overflow} px sideways: ${wide.join(', ')}`);
  }
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async (tags) => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), impact: n.impact, summary: n.failureSummary })),
    }));
  }, TAGS);
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) {
    problems.push(`${where}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target).join(', ')}`);
  }
  checked += 1;
  console.log(JSON.stringify({
    user: u.name, path: p.path, width, status,
    serious: bad.map((v) => ({ id: v.id, nodes: v.nodes })),
    minor: violations.filter((v) => !bad.includes(v)).map((v) => `${v.impact} ${v.id}`),
  }));
}

const browser = await launch(cfg);
try {
  for (const u of cfg.users) {
    const context = await browser.newContext({ locale: 'en-GB', viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    watch(page, problems);
    try {
      if (u.email) await signIn(page, u);
      for (const p of u.pages) {
        for (const width of WIDTHS) {
          try {
            await audit(page, u, p, width);
          } catch (e) {
            problems.push(`${u.name} ${p.path} @${width}: ${e.message}`);
          }
        }
      }
    } catch (e) {
      problems.push(`${u.name}: ${e.message}`);
    } finally {
      await context.close();
    }
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify({ checked }));
if (problems.length) {
  console.log(JSON.stringify({ failed: problems }, null, 1));
  process.exit(1);
}
console.log(JSON.stringify({ ok: true }));
