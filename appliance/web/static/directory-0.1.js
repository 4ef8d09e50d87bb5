// Directory page (administrators): check every directory account against the directory now.
(function () {
  "use strict";
  const button = document.getElementById("sync-now");
  if (!button) return;
  const status = document.getElementById("sync-status");
  button.addEventListener("click", async () => {
    button.disabled = true; status.className = "form-status"; status.textContent = "Checking…";
    try {
      const out = await window.Sotto.api("POST", "/api/v1/directory/sync", {});
      status.className = out.error ? "form-status error" : "form-status ok";
      status.textContent = out.error ? `The directory could not be checked: ${out.error}` : `${out.checked} checked, ${out.disabled} disabled.`;
    } catch (err) { status.className = "form-status error"; status.textContent = err.message; }
    button.disabled = false;
  });
})();
