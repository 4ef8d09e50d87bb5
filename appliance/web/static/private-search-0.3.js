// "Search my private transcripts": the server cannot search them, so after unlock the browser fetches the
// envelopes of the private transcripts the user's keys open, decrypts them here and searches the words.
// Decrypted documents stay in this module's memory for further searches on this page, nowhere else.
import * as sc from "/static/sotto-crypto-0.1.js";
import { unlock, userId } from "/static/unlock-0.2.js";
import { matcher } from "/static/search-rules-0.1.js";

const $ = (id) => document.getElementById(id);
const { api, clock } = window.Sotto;
const { t, number } = window.SottoI18n;  // the page's language (static/i18n-0.1.js)
const opened = new Map();  // transcript id → {title, doc}

function say(text, cls) { const el = $("private-search-state"); el.textContent = text; el.className = cls || ""; }

async function openAll(keys) {
  const me = userId();
  const listing = await api("GET", "/api/v1/private/transcripts");
  let failed = 0;
  for (const t of listing) {
    if (opened.has(t.id)) continue;
    try {
      const stored = await api("GET", `/api/v1/transcripts/${t.id}/envelope`);
      const tk = stored.user_id === me ? await sc.transcriptKey(keys, stored, me, t.id)
        : await sc.unsealWithPrivateKey(keys.privateKey, keys.publicKey, stored.key_envelope, me, t.id);
      opened.set(t.id, { title: t.title, doc: await sc.openTranscript(tk, stored.body, stored.user_id, t.id) });
      tk.fill(0);
    } catch (err) { failed += 1; }
  }
  return { total: listing.length, failed };
}

// The server search's word rules (whole words in Latin, Cyrillic, Arabic…; substrings in CJK and the Indic
// scripts), so a private transcript is found by the same query as a standard one.
function find(query) {
  const match = matcher(query);
  const hits = [];
  for (const [id, { title, doc }] of opened) {
    doc.segments.forEach((seg, i) => {
      if (match(seg.text || "")) hits.push({ id, title: doc.title || title, seg, sid: seg.sid ?? i + 1 });
    });
  }
  return hits;
}

function show(hits) {
  $("private-results").replaceChildren(...hits.slice(0, 200).map((h) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/t/${h.id}?t=${h.seg.start}`;
    const strong = document.createElement("strong"); strong.textContent = h.title;
    a.appendChild(strong);
    const where = document.createElement("span"); where.className = "muted"; where.textContent = ` · ${clock(Math.round(h.seg.start * 1000))}`;
    const snippet = document.createElement("p"); snippet.className = "snippet"; snippet.textContent = h.seg.text.trim();
    li.append(a, where, snippet);
    return li;
  }));
}

$("private-search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const keys = await unlock();
    say(t("Decrypting your private transcripts in this browser…"));
    const { total, failed } = await openAll(keys);
    const hits = find($("private-q").value);
    show(hits);
    const matches = hits.length === 1 ? t("1 match") : t("{n} matches", { n: number(hits.length) });
    say((total === 1 ? t("{matches} in 1 private transcript", { matches })
      : t("{matches} in {total} private transcripts", { matches, total: number(total) }))
      + (failed ? " " + t("({n} could not be opened)", { n: number(failed) }) : ""));
  } catch (err) {
    say(err.message === "Locked" ? t("Locked: unlock to search your private transcripts.") : err.message, "error");
  }
});
