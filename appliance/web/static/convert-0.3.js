// "Make private" on a standard transcript's page (its creator, with private transcripts on): the browser
// reads the saved document, seals it under a new transcript key wrapped by the data key, and sends both
// envelopes; the server swaps them for the plaintext in one transaction and deletes the old text for good.
import * as sc from "/static/sotto-crypto-0.1.js";
import { unlock, userId, secure, NEEDS_HTTPS } from "/static/unlock-0.2.js";

const $ = (id) => document.getElementById(id);
const { t } = window.SottoI18n;
const FIELDS = ["id", "title", "text", "language", "duration", "model", "options", "note", "speakers", "segments"];
const button = $("make-private"), state = $("convert-state");

if (!secure()) { button.disabled = true; state.textContent = NEEDS_HTTPS; }

button.addEventListener("click", async () => {
  if (!confirm(t("Make this transcript private?") + "\n\n" + t("Your browser encrypts it; the server keeps only the "
    + "encrypted copy and deletes the readable text for good. Server search, server exports, plain public links and "
    + "summaries stop working for it. Only your keys (your passphrase or your recovery key) can open it again."))) return;
  const { api } = window.Sotto;
  try {
    if (window.SottoEditor) await window.SottoEditor.settle();  // the envelope must hold the latest edits
    const keys = await unlock();
    state.textContent = t("Encrypting…");
    const uid = userId();
    const full = await api("GET", `/api/v1/transcripts/${JSON.parse($("doc").textContent).id}`);
    const doc = Object.fromEntries(FIELDS.map((k) => [k, full[k]]));
    const tk = sc.newTranscriptKey();
    const keyEnvelope = await sc.wrapTranscriptKey(keys.dk, tk, uid, full.id);
    const body = await sc.sealTranscript(tk, doc, uid, full.id);
    tk.fill(0);
    await api("POST", `/api/v1/transcripts/${full.id}/convert-to-private`, { key_envelope: keyEnvelope, body, base_revision: full.revision });
    state.textContent = t("Private now. Reloading…");
    window.location.reload();
  } catch (err) {
    state.className = "error";
    state.textContent = err.message === "Locked" ? t("Not converted: unlock first.") : err.message;
  }
});
