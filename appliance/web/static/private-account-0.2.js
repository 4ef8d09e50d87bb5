// The account page's private-transcripts card: turn them on (a passphrase of their own, then the recovery
// key shown once), change the passphrase (the data key is re-wrapped; no transcript envelope changes), set a
// new one with the recovery key, and move an account whose keys were wrapped under the sign-in password to
// new keys (every transcript key re-wrapped here). Keys and passphrases exist only inside these handlers.
import * as sc from "/static/sotto-crypto-0.1.js";
import { userId, secure } from "/static/unlock-0.2.js";

const $ = (id) => document.getElementById(id);
const { api } = window.Sotto;
const { t } = window.SottoI18n;  // the page's language (static/i18n-0.1.js)

function state(id, text, cls) { const el = $(id); el.textContent = text; el.className = `unlock-state${cls ? ` is-${cls}` : ""}`; }

if (!secure()) {
  $("private-https").classList.remove("hidden");
  document.querySelectorAll("#private form button[type=submit]").forEach((b) => { b.disabled = true; });
}

/** The new passphrase from a form, checked here before any key work: typed twice alike, and not the password. */
function newPassphrase(data) {
  const passphrase = data.get("new_passphrase");
  if (passphrase !== data.get("repeat_passphrase")) throw new Error(t("The two new passphrases are not the same."));
  if (passphrase === data.get("current_password")) {
    throw new Error(t("Choose a passphrase that is not your sign-in password: the appliance receives the password at every sign-in."));
  }
  return passphrase;
}

function showRecoveryKey(recoveryKey, form) {
  form.classList.add("hidden");
  $("recovery-key").textContent = recoveryKey;
  $("recovery-shown").classList.remove("hidden");
  $("recovery-copy").focus();
}

$("recovery-copy").addEventListener("click", async () => {
  try { await navigator.clipboard.writeText($("recovery-key").textContent); $("recovery-copied").textContent = t("Copied"); }
  catch (err) { $("recovery-copied").textContent = t("Select the key and copy it."); }
});
$("recovery-download").addEventListener("click", () => {
  const text = [t("Sotto recovery key for {who}", { who: document.querySelector(".who").textContent }), $("recovery-key").textContent,
    t("It opens your private transcripts if you forget your passphrase. Keep it away from the appliance.")].join("\n\n") + "\n";
  window.Sotto.download(new Blob([text], { type: "text/plain" }), "sotto-recovery-key.txt");
});
$("recovery-stored").addEventListener("change", (e) => { $("recovery-done").disabled = !e.target.checked; });
$("recovery-done").addEventListener("click", () => { $("recovery-key").textContent = ""; window.location.reload(); });

const enrolForm = $("enrol-form");
if (enrolForm) {
  enrolForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(enrolForm);
    try {
      const passphrase = newPassphrase(data);
      state("enrol-state", t("Making your keys…"), "busy");
      const { record, recoveryKey } = await sc.enrol(passphrase, userId());
      await api("PUT", "/api/v1/me/private-keys", { ...record, current_password: data.get("current_password") });
      enrolForm.reset();
      showRecoveryKey(recoveryKey, enrolForm);
    } catch (err) {
      state("enrol-state", err.message, "failed");
    }
  });
}

const changeForm = $("private-passphrase-form");
if (changeForm) {
  changeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(changeForm);
    try {
      const passphrase = newPassphrase(data);
      state("private-passphrase-state", t("Unlocking…"), "busy");
      const record = await api("GET", "/api/v1/me/private-keys");
      const change = await sc.changePassphrase(data.get("current_passphrase"), passphrase, record, userId());
      await api("POST", "/api/v1/me/private-keys/passphrase", { ...change, current_password: data.get("current_password") });
      changeForm.reset();
      state("private-passphrase-state", t("Passphrase changed."), "ok");
    } catch (err) {
      state("private-passphrase-state", err.code === "decrypt" ? t("The current passphrase is not right.") : err.message, "failed");
    }
  });
}

const recoverForm = $("private-recover-form");
if (recoverForm) {
  recoverForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(recoverForm);
    try {
      const passphrase = newPassphrase(data);
      state("private-recover-state", t("Unlocking…"), "busy");
      const record = await api("GET", "/api/v1/me/private-keys");
      const change = await sc.newPassphraseWithRecoveryKey(data.get("recovery_key"), passphrase, record, userId());
      await api("POST", "/api/v1/me/private-keys/passphrase", { ...change, current_password: data.get("current_password") });
      recoverForm.reset();
      state("private-recover-state", t("Done: your new passphrase opens your private transcripts."), "ok");
    } catch (err) {
      const wrong = err.code === "decrypt" || err.code === "malformed";
      state("private-recover-state", wrong ? t("That recovery key does not open your keys.") : err.message, "failed");
    }
  });
}

const rekeyForm = $("rekey-form");
if (rekeyForm) {
  $("rekey-use-recovery").addEventListener("click", (event) => {
    const open = $("rekey-recovery-label").classList.toggle("hidden") === false;
    event.target.setAttribute("aria-expanded", String(open));
    if (open) rekeyForm.elements.recovery_key.focus();
  });
  rekeyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(rekeyForm);
    const uid = userId();
    try {
      const passphrase = newPassphrase(data);
      state("rekey-state", t("Opening your old keys…"), "busy");
      const record = await api("GET", "/api/v1/me/private-keys");
      const recovery = (data.get("recovery_key") || "").trim();
      const old = recovery ? await sc.unlockWithRecoveryKey(recovery, record, uid)
        : await sc.unlock(data.get("current_password"), record, uid);
      for (let attempt = 0; ; attempt += 1) {  // a private job may finish meanwhile: the server says 409, redo
        state("rekey-state", t("Making new keys and moving your transcripts to them…"), "busy");
        const inventory = await api("GET", "/api/v1/me/private-keys/rekey");
        const moved = await sc.rekey(old, passphrase, inventory, uid);
        try {
          await api("POST", "/api/v1/me/private-keys/rekey", {
            current_password: data.get("current_password"), record: moved.record, owned: moved.owned, received: moved.received,
          });
        } catch (err) {
          if (err.status === 409 && attempt < 3) continue;
          throw err;
        }
        rekeyForm.reset();
        $("legacy-notice").classList.add("hidden");
        showRecoveryKey(moved.recoveryKey, rekeyForm);
        break;
      }
    } catch (err) {
      const wrong = err.code === "decrypt" || err.code === "malformed";
      state("rekey-state", wrong ? t("That does not open your old keys: check the sign-in password, or use your recovery key.")
        : err.message, "failed");
    }
  });
}
