// Sign in through the JSON API (the session cookie is set by the response), then go on. The password is
// only the sign-in secret: private transcripts open with a passphrase of their own, asked for later and
// never sent to the appliance.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const $ = (id) => document.getElementById(id);
  const form = $("login-form");

  function goOn() {
    const next = form.dataset.next || "/";
    window.location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-result").textContent = "";
    const data = new FormData(form);
    $("login-state").textContent = t("Signing in…");
    const response = await fetch("/api/v1/auth/login", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: data.get("email"), password: data.get("password") }),
    }).catch(() => null);
    $("login-state").textContent = "";
    if (response && response.ok) { goOn(); return; }
    const body = response && (response.headers.get("content-type") || "").includes("json") ? await response.json() : {};
    $("login-result").textContent = response ? (body.detail || t("Sign-in failed.")) : t("The appliance cannot be reached. Try again.");
  });

  $("forgot").addEventListener("click", (event) => {
    const open = $("forgot-help").classList.toggle("hidden") === false;
    event.target.setAttribute("aria-expanded", String(open));
  });
})();
