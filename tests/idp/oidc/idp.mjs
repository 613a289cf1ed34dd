// Test OpenID provider for Kluis's SSO tests: npm `oidc-provider` (OpenID certified) over HTTPS
// on 127.0.0.1, started and stopped by kluis-testkit (`kluis_testkit::TestIdp`). Never deployed.
//
// Environment:
//   IDP_CERT, IDP_KEY    PEM files of the TLS certificate (made by the testkit)
//   IDP_ADMIN_TOKEN      bearer token for the /__test endpoints below
// Prints `kluis-test-idp: listening on https://127.0.0.1:PORT` once it serves.
//
// The provider itself is stock: authorization code flow, PKCE required, client_secret_basic,
// RS256 ID tokens, userinfo at /me, JWKS at /jwks. Login is automatic: the account registered
// with POST /__test/next-login signs in (no form to drive), and consent is granted by
// `loadExistingGrant` (the documented first-party-client recipe).
//
// Clients register at POST /reg (OpenID Connect Dynamic Client Registration) with the admin
// token as initial access token.
//
// Test-only switches (POST, JSON, `Authorization: Bearer $IDP_ADMIN_TOKEN`):
//   /__test/next-login  {sub, email, email_verified, name}: who signs in next
//   /__test/mutate      one-shot change of the next token / userinfo response:
//                       {claims: {...}}  merged into the next ID token's payload, re-signed
//                       {sign: "other_key_same_kid" | "none"}  bad signature / `alg: none`
//                       {userinfo_sub: "..."}  `sub` of the next userinfo response
//   /__test/rotate      new signing key: later ID tokens are signed with it, /jwks lists both
import https from 'node:https';
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const adminToken = process.env.IDP_ADMIN_TOKEN;
if (!adminToken) throw new Error('IDP_ADMIN_TOKEN is required');

async function newKey() {
  const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const kid = crypto.randomBytes(8).toString('hex');
  const priv = { ...(await jose.exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  const pub = { ...(await jose.exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, priv, pub };
}

const original = await newKey();
let current = original; // the key ID tokens are (re-)signed with
const published = [original.pub];

const accounts = new Map();
let nextLogin = null;
let mutation = null;

const server = https.createServer({
  cert: fs.readFileSync(process.env.IDP_CERT),
  key: fs.readFileSync(process.env.IDP_KEY),
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `https://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys: [original.priv] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: {
    devInteractions: { enabled: false },
    // Clients (one per test tenant) are registered over the standard registration endpoint.
    registration: { enabled: true, initialAccessToken: adminToken },
  },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => {
    const a = accounts.get(id);
    if (!a) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...a }) };
  },
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

async function resign(idToken, m) {
  const payload = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());
  Object.assign(payload, m.claims ?? {});
  if (m.sign === 'none') return `${b64({ alg: 'none' })}.${b64(payload)}.`;
  let key = current.privateKey;
  if (m.sign === 'other_key_same_kid') key = (await newKey()).privateKey;
  return new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: current.kid }).sign(key);
}

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {};
}

provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/__test/')) {
    if (ctx.get('authorization') !== `Bearer ${adminToken}` || ctx.method !== 'POST') {
      ctx.status = 403;
      return;
    }
    const body = await readJson(ctx.req);
    switch (ctx.path) {
      case '/__test/next-login': {
        const { sub, ...claims } = body;
        accounts.set(sub, claims);
        nextLogin = sub;
        break;
      }
      case '/__test/mutate':
        mutation = body;
        break;
      case '/__test/rotate':
        current = await newKey();
        published.push(current.pub);
        break;
      default:
        ctx.status = 404;
        return;
    }
    ctx.status = 204;
    return;
  }
  if (ctx.method === 'GET' && ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name !== 'login' || !nextLogin) {
      ctx.status = 400;
      ctx.body = { error: `unexpected prompt ${details.prompt.name}` };
      return;
    }
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: nextLogin },
    }, { mergeWithLastSubmission: false });
    ctx.redirect(to);
    return;
  }
  await next();
  if (ctx.path === '/jwks' && ctx.status === 200) {
    ctx.body = { keys: published };
  }
  const rotated = current !== original;
  if (ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token && (mutation || rotated)) {
    const m = mutation ?? {};
    if (m.claims || m.sign || rotated) {
      ctx.body = { ...ctx.body, id_token: await resign(ctx.body.id_token, m) };
    }
    if (!m.userinfo_sub) mutation = null;
  }
  if (ctx.path === '/me' && ctx.status === 200 && mutation?.userinfo_sub) {
    ctx.body = { ...ctx.body, sub: mutation.userinfo_sub };
    mutation = null;
  }
});

server.on('request', provider.callback());
process.stdout.write(`kluis-test-idp: listening on ${issuer}\n`);
// The testkit closes our stdin when it stops us (or when the test process dies).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
