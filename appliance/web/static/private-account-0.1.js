// The account page's private-transcripts card: turn them on (enrol, then show the recovery key once),
// change the passphrase (the data key is re-wrapped; no transcript envelope changes), and recover after
// an administrator's reset with the recovery key. Keys exist only inside these handlers.
import * as sc from "/static/sotto-crypto-0.1.js";
import { userId, secure } from "/static/unlock-0.1.js";

const $ = (id) => document.getElementById(id);
const { api } = window.Sotto;

function state(id, text, cls) { const el = $(id); el.textContent = text; el.className = `unlock-state${cls ? ` is-${cls}` : ""}`; }

if (!secure()) {
  $("private-https").classList.remove("hidden");
  document.querySelectorAll("#private form button[type=submit]").forEach((b) => { b.disabled = true; });
}

const enrolForm = $("enrol-form");
if (enrolForm) {
  enrolForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = new FormData(enrolForm).get("password");
    state("enrol-state", "Making your keys…", "busy");
    try {
      const { record, recoveryKey } = await sc.enrol(password, userId());
      await api("PUT", "/api/v1/me/private-keys", { ...record, current_password: password });
      enrolForm.classList.add("hidden");
      $("recovery-key").textContent = recoveryKey;
      $("recovery-shown").classList.remove("hidden");
    } catch (err) {
      state("enrol-state", err.message, "failed");
    }
  });
  $("recovery-copy").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("recovery-key").textContent); $("recovery-copied").textContent = "Copied"; }
    catch (err) { $("recovery-copied").textContent = "Select the key and copy it."; }
  });
  $("recovery-download").addEventListener("click", () => {
    const text = `Sotto recovery key for ${document.querySelector(".who").textContent}\n\n${$("recovery-key").textContent}\n\n`
      + "It opens your private transcripts if you forget your passphrase. Keep it away from the appliance.\n";
    window.Sotto.download(new Blob([text], { type: "text/plain" }), "sotto-recovery-key.txt");
  });
  $("recovery-stored").addEventListener("change", (e) => { $("recovery-done").disabled = !e.target.checked; });
  $("recovery-done").addEventListener("click", () => { $("recovery-key").textContent = ""; window.location.reload(); });
}

const changeForm = $("private-password-form");
if (changeForm) {
  changeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(changeForm);
    state("private-password-state", "Unlocking…", "busy");
    try {
      const record = await api("GET", "/api/v1/me/private-keys");
      const current = data.get("current_password");
      const change = await sc.changePassword(current, data.get("new_password"), record, userId());
      const currentAuth = await sc.authKeyFor(current, record.kdf);
      await api("POST", "/api/v1/me/private-keys/password", { ...change, current_password: currentAuth });
      changeForm.reset();
      state("private-password-state", "Passphrase changed. Your other sessions were signed out.", "ok");
    } catch (err) {
      state("private-password-state", err.code === "decrypt" ? "The current passphrase is not right." : err.message, "failed");
    }
  });
}

const recoverForm = $("private-recover-form");
if (recoverForm) {
  recoverForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(recoverForm);
    state("private-recover-state", "Unlocking…", "busy");
    try {
      const record = await api("GET", "/api/v1/me/private-keys");
      const change = await sc.resetPasswordWithRecoveryKey(data.get("recovery_key"), data.get("new_password"), record, userId());
      await api("POST", "/api/v1/me/private-keys/password", { ...change, current_password: data.get("current_password") });
      state("private-recover-state", "Restored. Sign in with your new passphrase from now on.", "ok");
      setTimeout(() => window.location.reload(), 800);
    } catch (err) {
      const wrong = err.code === "decrypt" || err.code === "malformed";
      state("private-recover-state", wrong ? "That recovery key does not open your keys." : err.message, "failed");
    }
  });
}
