// Sign in through the JSON API (the session cookie is set by the response), then go on. The password is
// only the sign-in secret: private transcripts open with a passphrase of their own, asked for later and
// never sent to the appliance. Accounts with a second factor get a short-lived token for the second
// step (a code, a recovery code, or a passkey) instead of a session.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const $ = (id) => document.getElementById(id);
  const form = $("login-form"), second = $("second-factor-form");
  let pending = null;

  function goOn(body) {
    if (body && body.enrol_second_factor) { window.location.assign("/account/second-factor"); return; }
    const next = form.dataset.next || "/";
    window.location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  }

  async function post(url, payload) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    }).catch(() => null);
    const body = response && (response.headers.get("content-type") || "").includes("json") ? await response.json() : {};
    if (!response) throw new Error(t("The appliance cannot be reached. Try again."));
    if (!response.ok) throw new Error(body.detail || t("Sign-in failed."));
    return body;
  }

  function askSecondFactor(step) {
    pending = step.token;
    form.classList.add("hidden");
    second.classList.remove("hidden");
    const app = step.methods.includes("totp"), recovery = step.methods.includes("recovery");
    const passkey = step.methods.includes("passkey") && window.SottoPasskeys.supported();
    const codes = app || recovery;
    $("code-label").classList.toggle("hidden", !codes);
    $("code-submit").classList.toggle("hidden", !codes);
    $("second-factor-help").textContent = app
      ? t("Type the six digits your authenticator app shows, or one of your recovery codes.")
      : codes ? t("Use your passkey or security key, or type one of your recovery codes.") : t("Use your passkey or security key.");
    $("use-passkey").classList.toggle("hidden", !passkey);
    (passkey && !app ? $("use-passkey") : second.elements.code).focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-result").textContent = "";
    const data = new FormData(form);
    $("login-state").textContent = t("Signing in…");
    try {
      const body = await post("/api/v1/auth/login", { email: data.get("email"), password: data.get("password") });
      $("login-state").textContent = "";
      if (body.second_factor) { askSecondFactor(body.second_factor); return; }
      goOn(body);
    } catch (err) { $("login-state").textContent = ""; $("login-result").textContent = err.message; }
  });

  second.addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-result").textContent = "";
    try { goOn(await post("/api/v1/auth/login/second-factor", { token: pending, code: second.elements.code.value })); }
    catch (err) { $("login-result").textContent = err.message; second.elements.code.select(); }
  });

  $("use-passkey").addEventListener("click", async () => {
    $("login-result").textContent = "";
    try {
      const options = await post("/api/v1/auth/login/passkey-options", { token: pending });
      $("login-state").textContent = t("Follow your browser's prompt…");
      const credential = await window.SottoPasskeys.get(options).catch((err) => { throw new Error(window.SottoPasskeys.explain(err)); });
      goOn(await post("/api/v1/auth/login/passkey", { token: pending, credential }));
    } catch (err) { $("login-state").textContent = ""; $("login-result").textContent = err.message; }
  });

  $("start-over").addEventListener("click", () => {
    pending = null; second.reset(); second.classList.add("hidden"); form.classList.remove("hidden"); form.elements.password.value = "";
    form.elements.email.focus();
  });

  $("forgot").addEventListener("click", (event) => {
    const open = $("forgot-help").classList.toggle("hidden") === false;
    event.target.setAttribute("aria-expanded", String(open));
  });
})();
