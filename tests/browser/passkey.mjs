// Adds a passkey on the account page and signs in with it, passwordless, in headless Chromium
// with a virtual authenticator (Chromium's own WebAuthn stack through the DevTools protocol:
// CTAP2, resident keys, user verification). CSP violations and page errors fail the run.
//
// Input (JSON, argv[2]): { base, cert, organisation, email, password, chromium }
// Output: one JSON line per step on stdout; exit code 0 only if every step passed.
import { launch, watch } from './launch.mjs';

const cfg = JSON.parse(process.argv[2]);
const step = (name, extra = {}) => console.log(JSON.stringify({ step: name, ...extra }));
const problems = [];

const browser = await launch(cfg);
try {
  const context = await browser.newContext({ locale: 'nl-NL' });
  const page = await context.newPage();
  watch(page, problems);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });

  await page.goto(`${cfg.base}/sign-in`);
  await page.fill('#organisation', cfg.organisation);
  await page.fill('#email', cfg.email);
  await page.fill('#password', cfg.password);
  await Promise.all([page.waitForURL('**/account'), page.click('#sign-in button[type=submit]')]);
  step('signed in with password', { url: page.url() });

  await page.fill('#passkey-name', 'Chromium');
  await Promise.all([page.waitForURL('**/account?done=passkey'), page.click('#passkey-add button[type=submit]')]);
  const listed = await page.textContent('#passkeys');
  if (!listed.includes('Chromium')) problems.push(`passkey not listed: ${listed}`);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  step('passkey added', { resident: credentials.map((c) => c.isResidentCredential), rpId: credentials[0]?.rpId });
  if (credentials.length !== 1 || !credentials[0].isResidentCredential) problems.push('no resident credential');

  await Promise.all([page.waitForURL('**/sign-in'), page.click('#sign-out')]);
  step('signed out');

  // Passwordless: only the organisation is typed.
  await page.fill('#organisation', cfg.organisation);
  await Promise.all([page.waitForURL('**/account'), page.click('#passkey-sign-in')]);
  const who = await page.textContent('#whoami');
  if (!who.includes(cfg.email)) problems.push(`account page shows ${who}`);
  step('signed in with passkey', { whoami: who.trim() });
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
