// Unlocking private transcripts in one page: the passphrase (or the recovery key) opens the user's keys,
// which live only in this module's memory. Never in localStorage, IndexedDB or sessionStorage: leaving
// the page, "Lock now" and IDLE_LOCK_MS without activity forget them (a reload drops every plaintext too).
// The dialog goes Locked → Unlocking… (key derivation takes a second or so) → Wrong passphrase / Unlocked.
import * as sc from "/static/sotto-crypto-0.1.js";

const { t } = window.SottoI18n;  // the page's language (static/i18n-0.1.js)

export const IDLE_LOCK_MS = 15 * 60 * 1000;
export const NEEDS_HTTPS = t("Private transcripts need HTTPS: open this page over https:// (or on localhost). "
  + "Browsers only offer the encryption they need on secure connections.");

const $ = (id) => document.getElementById(id);
let keys = null;
let asking = null;
let idleTimer = null;

export function userId() {
  const meta = document.querySelector('meta[name="sotto-user"]');
  return meta ? meta.content : "";
}

export function secure() {
  return window.isSecureContext && sc.hasWebCrypto();
}

export class Locked extends Error {}

function setState(text, cls) {
  const el = $("unlock-state");
  el.textContent = text;
  el.className = cls ? `unlock-state is-${cls}` : "unlock-state";
  const page = $("lock-state");
  if (page) page.textContent = keys ? t("Unlocked") : t("Locked");
}

async function keyRecord() {
  return window.Sotto.api("GET", "/api/v1/me/private-keys");
}

/** The user's keys {dk, privateKey, publicKey}; asks in the dialog the first time on this page. */
export function unlock() {
  if (keys) return Promise.resolve(keys);
  if (!secure()) return Promise.reject(new Locked(NEEDS_HTTPS));
  if (!asking) asking = ask().finally(() => { asking = null; });
  return asking;
}

async function ask() {
  const record = await keyRecord();
  return record.needs_new_passphrase ? askForNewPassphrase() : askPassphrase(record);
}

/** Keys still wrapped under the sign-in password do not open here: the account page replaces them first. */
function askForNewPassphrase() {
  const dialog = $("unlock-dialog"), form = $("unlock-form");
  for (const id of ["unlock-ask", "unlock-recovery-row"]) $(id).classList.add("hidden");
  $("unlock-legacy").classList.remove("hidden");
  $("unlock-ok").textContent = t("Choose a passphrase");
  setState(t("Locked"));
  return new Promise((resolve, reject) => {
    const go = (event) => { event.preventDefault(); window.location.assign("/account#private"); };
    const cancel = () => { form.removeEventListener("submit", go); dialog.removeEventListener("close", cancel); reject(new Locked("Locked")); };
    form.addEventListener("submit", go);
    dialog.addEventListener("close", cancel);
    dialog.showModal();
    $("unlock-ok").focus();
  });
}

function askPassphrase(record) {
  const dialog = $("unlock-dialog"), form = $("unlock-form");
  const password = $("unlock-password"), recovery = $("unlock-recovery");
  let useRecovery = false;
  setState(t("Locked"));
  return new Promise((resolve, reject) => {
    const toggle = () => {
      useRecovery = !useRecovery;
      $("unlock-pass-label").classList.toggle("hidden", useRecovery);
      $("unlock-recovery-label").classList.toggle("hidden", !useRecovery);
      $("unlock-use-recovery").textContent = useRecovery ? t("Use your passphrase") : t("Use your recovery key instead");
    };
    const submit = async (event) => {
      event.preventDefault();
      setState(t("Unlocking…"), "busy");
      $("unlock-ok").disabled = true;
      try {
        const uid = userId();
        keys = useRecovery ? await sc.unlockWithRecoveryKey(recovery.value, record, uid)
          : await sc.unlock(password.value, record, uid);
        password.value = ""; recovery.value = "";
        setState(t("Unlocked"), "ok");
        cleanup();
        dialog.close("ok");
        armIdleLock();
        document.querySelectorAll(".lock-now").forEach((b) => b.classList.remove("hidden"));
        resolve(keys);
      } catch (err) {
        const wrong = err instanceof sc.CryptoRefused && err.code === "decrypt";
        const malformed = err instanceof sc.CryptoRefused && err.code === "malformed" && useRecovery;
        setState(wrong ? (useRecovery ? t("Wrong recovery key") : t("Wrong passphrase"))
          : malformed ? t("That is not a recovery key (52 letters and digits)") : t("Cannot unlock: {reason}", { reason: err.message }), "failed");
      } finally {
        $("unlock-ok").disabled = false;
      }
    };
    const cancel = () => { if (!keys) { cleanup(); reject(new Locked("Locked")); } };
    const cleanup = () => {
      form.removeEventListener("submit", submit);
      $("unlock-use-recovery").removeEventListener("click", toggle);
      dialog.removeEventListener("close", cancel);
    };
    form.addEventListener("submit", submit);
    $("unlock-use-recovery").addEventListener("click", toggle);
    dialog.addEventListener("close", cancel);
    dialog.showModal();
    password.focus();
  });
}

/** Forget the keys and every decrypted text: reload the page (nothing of it was stored). */
export async function lockNow() {
  keys = null;
  if (window.SottoEditor) { try { await window.SottoEditor.settle(); } catch (e) { /* unsaved edits are warned about on unload */ } }
  window.location.reload();
}

function armIdleLock() {
  const reset = () => { clearTimeout(idleTimer); idleTimer = setTimeout(lockNow, IDLE_LOCK_MS); };
  for (const type of ["pointerdown", "keydown", "wheel", "touchstart"]) document.addEventListener(type, reset, { passive: true });
  reset();
}

document.addEventListener("click", (event) => {
  if (event.target.closest(".lock-now")) lockNow();
  if (event.target.closest("#unlock-cancel")) $("unlock-dialog").close("cancel");
});
