// The licence page: requests and installs go through the JSON API with the session's CSRF token.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const result = document.getElementById("license-result");
  async function csrf() {
    const me = await fetch("/api/v1/me", { credentials: "same-origin" });
    return (await me.json()).csrf_token;
  }
  document.getElementById("request-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = new FormData(event.target).get("license_key");
    const response = await fetch("/api/v1/license/request", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": await csrf() },
      body: JSON.stringify({ license_key: key }),
    });
    if (!response.ok) { result.textContent = (await response.json()).detail; return; }
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = "activation-request.json";
    link.click();
    result.textContent = t("{file} downloaded.", { file: "activation-request.json" });
  });
  const clock = document.getElementById("clock-form");
  if (clock) {
    clock.addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await fetch("/api/v1/license/clock", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": await csrf() },
        body: JSON.stringify({ confirm_now: new FormData(event.target).get("confirm_now") }),
      });
      if (!response.ok) { result.textContent = (await response.json()).detail; return; }
      window.location.reload();
    });
  }
  document.getElementById("install-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = event.target.elements.file.files[0];
    const response = await fetch("/api/v1/license", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "text/plain", "X-CSRF-Token": await csrf() },
      body: await file.text(),
    });
    const body = await response.json();
    if (!response.ok) { result.textContent = body.detail; return; }
    window.location.reload();
  });
})();
