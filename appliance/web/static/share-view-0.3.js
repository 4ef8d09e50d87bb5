// The public page of an encrypted link, /s/<token>#k=<key>. The key is in the fragment, which the
// browser never sends; the page takes it and at once removes it from the address bar and history
// (history.replaceState), then fetches the encrypted snapshot, decrypts it here and shows it.
import * as sc from "/static/sotto-crypto-0.1.js";
import { render, turns } from "/static/private-export-0.2.js";

const $ = (id) => document.getElementById(id);
const { t } = window.SottoI18n;
const token = $("transcript").dataset.token;

function say(text, cls) { const el = $("share-state"); el.textContent = text; el.className = cls || ""; }

function clock(seconds) {
  const total = Math.floor(seconds), h = Math.floor(total / 3600), m = Math.floor(total / 60) % 60, s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

async function show() {
  let key;
  try { key = sc.shareKeyFromFragment(location.hash); } catch (err) { key = null; }
  history.replaceState(null, "", location.pathname + location.search);  // the key leaves the address bar
  if (!key) { say(t("This link is missing its key (the part after #). Ask for the whole link."), "error"); return; }
  if (!sc.hasWebCrypto()) { say(t("Opening an encrypted link needs HTTPS: open it with https://."), "error"); return; }
  const response = await fetch(`/s/${encodeURIComponent(token)}/snapshot`, { credentials: "omit", cache: "no-store" });
  if (!response.ok) {
    say(response.status === 410 ? t("This link has expired.") : t("This link does not exist, was revoked, or was used up."), "error");
    return;
  }
  const { sid, envelope } = await response.json();
  let doc;
  try { doc = await sc.openShare(key, envelope, sid); } catch (err) { say(t("This link's key does not open it: check that you copied the whole link."), "error"); return; }
  finally { key.fill(0); }
  $("share-title").textContent = doc.title || t("Shared transcript");
  document.title = `${doc.title || t("Shared transcript")} · Sotto`;
  $("transcript").replaceChildren(...turns(doc).map((t) => {
    const p = document.createElement("p"); p.className = "turn";
    const time = document.createElement("span"); time.className = "muted"; time.textContent = `[${clock(t.start)}] `;
    p.appendChild(time);
    if (t.name) { const b = document.createElement("strong"); b.textContent = `${t.name}: `; p.appendChild(b); }
    const text = document.createElement("span"); text.dir = "auto"; text.textContent = t.text; p.appendChild(text);
    return p;
  }));
  const duration = clock(doc.duration || 0);
  say(doc.language ? t("Duration {duration}, language {language}.", { duration, language: doc.language }) : t("Duration {duration}.", { duration }));
  $("share-downloads").classList.remove("hidden");
  $("share-downloads").addEventListener("click", (event) => {
    const b = event.target.closest("[data-format]");
    if (!b) return;
    const url = URL.createObjectURL(render(doc, b.dataset.format)), a = document.createElement("a");
    a.href = url; a.download = `${doc.title || "transcript"}.${b.dataset.format}`; document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
}

show();
