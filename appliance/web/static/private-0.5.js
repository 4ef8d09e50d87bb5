// A private transcript's page. The server rendered the chrome only (it has no text); here the user
// unlocks, the browser fetches the envelope, gets the transcript key TK (a key sealed by the worker is
// re-wrapped under the data key and stored, so the next open skips the public-key step), opens the
// document and mounts the editor with a backend that applies edits to the document here, re-seals it
// under the same TK and saves the envelope against the revision it started from (409: the conflict banner).
import * as sc from "/static/sotto-crypto-0.1.js";
import { unlock, userId, secure, NEEDS_HTTPS } from "/static/unlock-0.2.js";
import { applyOps, normalise } from "/static/private-ops-0.2.js";
import { render } from "/static/private-export-0.2.js";
import { mountSharing } from "/static/private-share-0.3.js";

window.__sottoManualMount = true;  // the editor waits for the decrypted model (imported below, after this line runs)
const $ = (id) => document.getElementById(id);
const { api } = window.Sotto;
const { t } = window.SottoI18n;
const meta = JSON.parse($("doc").textContent);  // {id, revision, title, duration, editable, private}
const id = meta.id;

function say(text, cls) {
  const el = $("private-state");
  el.textContent = text;
  el.className = cls || "";
}

async function transcriptKey(keys, stored, me) {
  if (stored.kind === "none") throw new Error(t("This private transcript was not shared with you: your keys cannot open it."));
  if (stored.user_id !== me) return sc.unsealWithPrivateKey(keys.privateKey, keys.publicKey, stored.key_envelope, me, id);
  const tk = await sc.transcriptKey(keys, stored, me, id);
  if (stored.kind === "tk-sealed") {  // once: later opens unwrap with the data key only
    const wrapped = await sc.wrapTranscriptKey(keys.dk, tk, me, id);
    api("PUT", `/api/v1/transcripts/${id}/envelope/key`, { key_envelope: wrapped }).catch(() => {});
  }
  return tk;
}

async function open() {
  if (!secure()) { say(NEEDS_HTTPS, "error"); return; }
  say(t("Locked. Unlock to read this private transcript."));
  let keys;
  try { keys = await unlock(); } catch (err) { say(err.message === "Locked" ? t("Locked. Unlock to read this private transcript.") : err.message, err.message === "Locked" ? "" : "error"); $("unlock-open").classList.remove("hidden"); return; }
  $("unlock-open").classList.add("hidden");
  say(t("Opening…"));
  const me = userId();
  let stored, tk, doc;
  try {
    stored = await api("GET", `/api/v1/transcripts/${id}/envelope`);
    tk = await transcriptKey(keys, stored, me);
    doc = normalise(await sc.openTranscript(tk, stored.body, stored.user_id, id), meta.title);
  } catch (err) {
    say(err instanceof sc.CryptoRefused ? t("This transcript cannot be opened: {reason}.", { reason: err.message }) : err.message, "error");
    return;
  }
  const owner = stored.user_id;
  const editable = meta.editable && owner === me;
  let revision = stored.revision;

  const backend = {
    async save(ops, base, { force = false, keepalive = false } = {}) {
      const next = applyOps(structuredClone(doc), ops);
      const body = await sc.sealTranscript(tk, next, owner, id);
      let result;
      try {
        result = await api("PUT", `/api/v1/transcripts/${id}/envelope/body`, { body, base_revision: base }, { keepalive });
      } catch (err) {
        if (err.status !== 409 || !force) throw err;
        // "Keep mine": the whole document is one envelope, so mine replaces theirs at the current revision.
        const current = await api("GET", `/api/v1/transcripts/${id}/envelope`);
        result = await api("PUT", `/api/v1/transcripts/${id}/envelope/body`, { body, base_revision: current.revision });
      }
      doc = next;
      revision = result.revision;
      return { revision, rebased_over: [], updated_at: new Date().toISOString() };
    },
    async load() {
      const fresh = await api("GET", `/api/v1/transcripts/${id}/envelope`);
      doc = normalise(await sc.openTranscript(tk, fresh.body, owner, id), meta.title);
      revision = fresh.revision;
      return { ...doc, revision };
    },
    async export(format) { return render(doc, format); },
  };

  const { mount, modelFrom } = await import("/static/editor-0.4.js");
  $("t-title").textContent = doc.title;
  document.title = `${doc.title} · Sotto`;
  $("t-note").value = doc.note;
  say(editable ? t("Unlocked: edits are encrypted in this browser before they are saved.") : t("Unlocked (read only)."), "ok");
  mount({ model: modelFrom({ ...doc, revision }, editable), backend });
  if (owner === me && $("share-panel")) mountSharing({ id, tk, owner, doc: () => doc });
}

$("unlock-open").addEventListener("click", open);
open();
