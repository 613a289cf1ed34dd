// Reads the one-time token from the URL fragment (never sent to the server in the URL),
// removes it from the address bar, and posts the form as JSON.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const token = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, "", location.pathname);
  document.getElementById("token").value = token;
  const form = document.getElementById("setup");
  const out = document.getElementById("result");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(new FormData(form).entries());
    const res = await fetch("/api/v1/setup", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await res.json();
    if (!res.ok) {
      out.textContent = `Error: ${data.error.message}${data.error.field ? " (" + data.error.field + ")" : ""}`;
      return;
    }
    // Done: the form has served its purpose; lead on to sign-in (text nodes only, no HTML).
    form.hidden = true;
    out.textContent = `Done. Sign in to "${data.tenant.slug}" as ${data.owner.email}. `;
    const link = document.createElement("a");
    link.href = "/sign-in?organisation=" + encodeURIComponent(data.tenant.slug);
    link.id = "sign-in-link";
    link.textContent = "Sign in";
    out.append(link);
    form.after(out);
  });
});
