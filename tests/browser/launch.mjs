// Starts the machine's Chromium (headless) trusting exactly one certificate: the test server's
// self-signed one, pinned by the SHA-256 of its public key. No blanket "ignore certificate
// errors": a page with certificate errors would not get WebAuthn, and the pin is the honest
// equivalent of adding the server's certificate to the browser's trust store.
import { readFileSync } from 'node:fs';
import { X509Certificate, createHash } from 'node:crypto';
import { chromium } from 'playwright-core';

export function spkiPin(certPath) {
  const cert = new X509Certificate(readFileSync(certPath));
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

export async function launch(cfg) {
  return chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    // Root in CI: Chromium's sandbox needs an unprivileged user.
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
      `--ignore-certificate-errors-spki-list=${spkiPin(cfg.cert)}`],
  });
}

/// Collects what must never happen on Kluis's pages: CSP violations and script errors.
export function watch(page, problems) {
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
}
