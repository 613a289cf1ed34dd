// Signs in through Kluis's pages in headless Chromium with a password and a TOTP code, checks
// the account page, then signs out. Any Content-Security-Policy violation or page error fails
// the run: the pages must work under the strict CSP without inline code.
//
// Input (JSON, argv[2]): { base, cert, organisation, email, password, code, chromium }
// Output: one JSON line per step on stdout; exit code 0 only if every step passed.
import { launch, watch } from './launch.mjs';

const cfg = JSON.parse(process.argv[2]);
const step = (name, extra = {}) => console.log(JSON.stringify({ step: name, ...extra }));
const problems = [];

const browser = await launch(cfg);
try {
  const context = await browser.newContext({ locale: 'en-GB' });
  const page = await context.newPage();
  watch(page, problems);

  await page.goto(`${cfg.base}/sign-in`);
  step('sign-in page', { title: await page.title() });
  await page.fill('#organisation', cfg.organisation);
  await page.fill('#email', cfg.email);
  await page.fill('#password', cfg.password);
  await Promise.all([page.waitForURL('**/sign-in/2fa'), page.click('#sign-in button[type=submit]')]);
  step('second step', { url: page.url() });

  await page.fill('#code', cfg.code);
  await Promise.all([page.waitForURL('**/account'), page.click('#mfa button[type=submit]')]);
  const who = await page.textContent('#whoami');
  if (!who.includes(cfg.email)) problems.push(`account page shows ${who}`);
  const state = await page.textContent('#mfa-state');
  step('account', { whoami: who.trim(), mfa: state.trim() });

  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === '__Host-kluis_session');
  if (!session || !session.httpOnly || !session.secure || session.sameSite !== 'Strict') {
    problems.push(`session cookie flags: ${JSON.stringify(session && { ...session, value: '<hidden>' })}`);
  }
  // Scripts cannot read the session cookie.
  const visible = await page.evaluate(() => document.cookie);
  if (visible.includes('kluis_session')) problems.push('session cookie visible to scripts');

  await Promise.all([page.waitForURL('**/sign-in'), page.click('#sign-out')]);
  step('signed out', { url: page.url() });
  // The old session is gone: the account page sends the browser back to sign-in.
  await page.goto(`${cfg.base}/account`);
  if (!page.url().endsWith('/sign-in')) problems.push(`after sign-out /account went to ${page.url()}`);
  step('account after sign-out', { url: page.url() });
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
