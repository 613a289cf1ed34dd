// Reads the one-time token from the URL fragment (never sent to the server in the URL),
// removes it from the address bar and history, and posts the new password as JSON.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const token = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, "", location.pathname);
  const form = document.getElementById("account-link");
  const out = document.getElementById("result");
  if (!token) {
    out.textContent = form.dataset.missing;
    form.querySelector("button").disabled = true;
    return;
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { token };
    body[form.dataset.field] = new FormData(form).get(form.dataset.field);
    const res = await fetch(form.dataset.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (res.ok) {
      out.textContent = form.dataset.done;
      form.querySelector("button").disabled = true;
      return;
    }
    const data = await res.json().catch(() => ({ error: { message: String(res.status) } }));
    out.textContent = form.dataset.error + data.error.message;
  });
});
