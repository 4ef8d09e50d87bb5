// Sign in through the JSON API (the session cookie is set by the response), then go on.
// Private transcripts split the password: the browser asks for the account's key derivation parameters
// first and, when private mode is on, sends the derived auth key instead of the password, which never
// leaves the page. After an administrator's reset the account signs in with the temporary password and
// is offered the recovery form: the recovery key re-opens the data key and a new passphrase wraps it.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const form = $("login-form");
  const CRYPTO = "/static/sotto-crypto-0.1.js";
  const NEEDS_HTTPS = "This account uses private transcripts, and they need HTTPS: open this page over https:// to sign in.";
  let signedIn = null;

  function state(id, text, cls) { const el = $(id); el.textContent = text; el.className = `unlock-state${cls ? ` is-${cls}` : ""}`; }

  function goOn() {
    const next = form.dataset.next || "/";
    window.location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  }

  async function json(url, body, csrf) {
    const headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const response = await fetch(url, { method: body === undefined ? "GET" : "POST", credentials: "same-origin", headers,
      body: body === undefined ? undefined : JSON.stringify(body) });
    const data = (response.headers.get("content-type") || "").includes("json") ? await response.json() : {};
    return { ok: response.ok, status: response.status, data };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-result").textContent = "";
    const data = new FormData(form);
    const email = data.get("email"), password = data.get("password");
    let secret = password;
    const lookup = await json("/api/v1/auth/kdf", { email });
    if (lookup.ok && lookup.data.private) {
      if (!window.isSecureContext || !(window.crypto && window.crypto.subtle)) { $("login-result").textContent = NEEDS_HTTPS; return; }
      state("login-state", "Unlocking…", "busy");  // 600,000 rounds of PBKDF2: a moment, by design
      try {
        const sc = await import(CRYPTO);
        secret = await sc.authKeyFor(password, lookup.data.kdf);
      } catch (err) {
        state("login-state", ""); $("login-result").textContent = `Cannot sign in: ${err.message}`; return;
      }
    }
    const response = await json("/api/v1/auth/login", { email, password: secret });
    state("login-state", "");
    if (!response.ok) { $("login-result").textContent = response.data.detail || "Sign-in failed."; return; }
    signedIn = { password, csrf: response.data.csrf_token, uid: response.data.user.id };
    if (!lookup.data.private) {  // a temporary password after an administrator's reset?
      const record = await json("/api/v1/me/private-keys");
      if (record.ok && record.data.signs_in_with_auth_key === false) {
        signedIn.record = record.data;
        form.classList.add("hidden");
        $("recover-form").classList.remove("hidden");
        return;
      }
    }
    goOn();
  });

  $("forgot").addEventListener("click", () => $("recover-help").classList.toggle("hidden"));
  $("recover-later").addEventListener("click", goOn);
  $("recover-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    if (!window.isSecureContext || !(window.crypto && window.crypto.subtle)) { state("recover-state", NEEDS_HTTPS, "failed"); return; }
    state("recover-state", "Unlocking…", "busy");
    try {
      const sc = await import(CRYPTO);
      const change = await sc.resetPasswordWithRecoveryKey(data.get("recovery_key"), data.get("new_password"), signedIn.record, signedIn.uid);
      const saved = await json("/api/v1/me/private-keys/password", { ...change, current_password: signedIn.password }, signedIn.csrf);
      if (!saved.ok) throw new Error(saved.data.detail || "The appliance refused the new passphrase.");
      state("recover-state", "Restored. Sign in with your new passphrase from now on.", "ok");
      setTimeout(goOn, 800);
    } catch (err) {
      const wrong = err.code === "decrypt" || err.code === "malformed";
      state("recover-state", wrong ? "That recovery key does not open your keys. Check it and try again." : err.message, "failed");
    }
  });
})();
