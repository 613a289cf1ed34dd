// Passkeys on Kluis's pages: add one on the account page (or while enrolling), sign in with
// one (passwordless), or use one as the second step. Loaded from /assets (the CSP allows no
// inline script); everything else on these pages works without JavaScript.
//
// The server speaks the standard WebAuthn JSON (binary fields base64url); this file turns it
// into the ArrayBuffers navigator.credentials wants and the answer back into JSON.
"use strict";

const b64urlToBuf = (s) => {
  const pad = "=".repeat((4 - (s.length % 4)) % 4);
  const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
};
const bufToB64url = (b) =>
  btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function creationOptions(pk) {
  const o = structuredClone(pk);
  o.challenge = b64urlToBuf(o.challenge);
  o.user.id = b64urlToBuf(o.user.id);
  (o.excludeCredentials || []).forEach((c) => (c.id = b64urlToBuf(c.id)));
  return o;
}

function requestOptions(pk) {
  const o = structuredClone(pk);
  o.challenge = b64urlToBuf(o.challenge);
  (o.allowCredentials || []).forEach((c) => (c.id = b64urlToBuf(c.id)));
  return o;
}

function credentialJson(c) {
  if (typeof c.toJSON === "function") return c.toJSON();
  const r = c.response;
  const response = { clientDataJSON: bufToB64url(r.clientDataJSON) };
  if (r.attestationObject) response.attestationObject = bufToB64url(r.attestationObject);
  if (r.authenticatorData) response.authenticatorData = bufToB64url(r.authenticatorData);
  if (r.signature) response.signature = bufToB64url(r.signature);
  if (r.userHandle) response.userHandle = bufToB64url(r.userHandle);
  if (r.getTransports) response.transports = r.getTransports();
  return {
    id: c.id,
    rawId: bufToB64url(c.rawId),
    type: c.type,
    response,
    clientExtensionResults: c.getClientExtensionResults(),
    authenticatorAttachment: c.authenticatorAttachment || undefined,
  };
}

async function post(url, body, csrf) {
  const headers = { "Content-Type": "application/json" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(body || {}), credentials: "same-origin" });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((data.error && data.error.message) || String(res.status));
  return data;
}

function wire(el, run) {
  const out = document.getElementById(el.dataset.result || "passkey-result");
  if (!window.PublicKeyCredential) {
    el.disabled = true;
    if (out) out.textContent = el.dataset.unsupported || "";
    return;
  }
  el.addEventListener(el.tagName === "FORM" ? "submit" : "click", async (ev) => {
    ev.preventDefault();
    if (out) out.textContent = "";
    try {
      await run(el);
    } catch (e) {
      if (out) out.textContent = (el.dataset.error || "") + e.message;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  // Register a passkey (account page, or a sign-in that must enrol a second factor).
  const add = document.getElementById("passkey-add");
  if (add) wire(add, async (form) => {
    const csrf = form.dataset.csrf;
    const start = await post("/api/v1/me/passkeys/register/start", {}, csrf);
    const cred = await navigator.credentials.create({ publicKey: creationOptions(start.options.publicKey) });
    const name = new FormData(form).get("name") || "";
    await post("/api/v1/me/passkeys/register/finish", { ceremony: start.ceremony, name, credential: credentialJson(cred) }, csrf);
    window.location.assign(form.dataset.next || "/account?done=passkey");
  });

  // Passwordless sign-in, for the organisation typed in the sign-in form.
  const signIn = document.getElementById("passkey-sign-in");
  if (signIn) wire(signIn, async (button) => {
    const org = document.getElementById(button.dataset.organisation || "organisation");
    if (!org.value.trim()) {
      org.reportValidity();
      org.focus();
      return;
    }
    const start = await post("/api/v1/auth/passkey/start", { tenant: org.value.trim() });
    const cred = await navigator.credentials.get({ publicKey: requestOptions(start.options.publicKey) });
    await post("/api/v1/auth/passkey/finish", { ceremony: start.ceremony, credential: credentialJson(cred) });
    window.location.assign("/account");
  });

  // The second step of a password sign-in.
  const mfa = document.getElementById("passkey-mfa");
  if (mfa) wire(mfa, async (button) => {
    const csrf = button.dataset.csrf;
    const start = await post("/api/v1/auth/mfa/passkey/start", {}, csrf);
    const cred = await navigator.credentials.get({ publicKey: requestOptions(start.options.publicKey) });
    await post("/api/v1/auth/mfa/passkey/finish", { ceremony: start.ceremony, credential: credentialJson(cred) }, csrf);
    window.location.assign("/account");
  });
});
