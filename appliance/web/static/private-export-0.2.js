// Exports made in the browser from a decrypted document (the server cannot read a private transcript):
// TXT (speaker turns with times), SRT, VTT and JSON. DOCX and PDF need the server's renderer, so the page
// greys them out with the reason. Also the snapshot an encrypted share link carries.

// The page's language where there is one (static/i18n-0.1.js); English in the node tests and a share link's page without it.
const t = (message, values) => (globalThis.SottoI18n ? globalThis.SottoI18n.t(message, values)
  : message.replace(/\{([a-z_0-9]+)\}/g, (whole, name) => (values && name in values ? String(values[name]) : whole)));

export const FORMATS = ["txt", "srt", "vtt", "json"];
const TYPES = { txt: "text/plain", srt: "application/x-subrip", vtt: "text/vtt", json: "application/json" };

function speakerName(doc, id) {
  const s = (doc.speakers || []).find((x) => x.id === id);
  return s ? s.display_name || s.label : id || "";
}

function stamp(seconds, sep) {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${sep}${pad(ms % 1000, 3)}`;
}

function clock(seconds) {
  const total = Math.floor(seconds), h = Math.floor(total / 3600), m = Math.floor(total / 60) % 60, s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

/** Consecutive segments of one speaker become one paragraph: [start, speaker name, text]. */
export function turns(doc) {
  const out = [];
  for (const seg of doc.segments) {
    const words = (seg.text || "").trim();
    if (!words) continue;
    const last = out[out.length - 1];
    if (last && last.speaker === seg.speaker) last.text += " " + words;
    else out.push({ start: seg.start, speaker: seg.speaker, name: speakerName(doc, seg.speaker), text: words });
  }
  return out;
}

function cues(doc, sep) {
  return doc.segments.filter((s) => (s.text || "").trim()).map((s, i) => {
    const name = s.speaker ? speakerName(doc, s.speaker) : "";
    return `${sep === "," ? `${i + 1}\n` : ""}${stamp(s.start, sep)} --> ${stamp(s.end, sep)}\n${name ? `${name}: ` : ""}${s.text.trim()}\n`;
  }).join("\n");
}

export function render(doc, format) {
  let content;
  if (format === "txt") content = turns(doc).map((t) => `[${clock(t.start)}] ${t.name ? `${t.name}: ` : ""}${t.text}`).join("\n\n") + "\n";
  else if (format === "srt") content = cues(doc, ",");
  else if (format === "vtt") content = "WEBVTT\n\n" + cues(doc, ".");
  else if (format === "json") content = JSON.stringify(doc, null, 2);
  else throw new Error(t("{format} is not available for private transcripts: it is made on the server, which cannot read them.", { format: format.toUpperCase() }));
  return new Blob([content], { type: `${TYPES[format]};charset=utf-8` });
}

/** What an encrypted link shows: the text, times and speaker names; no word timings, notes or options. */
export function snapshot(doc) {
  return {
    title: doc.title, duration: doc.duration, language: doc.language,
    speakers: (doc.speakers || []).map((s) => ({ id: s.id, label: s.label, display_name: s.display_name })),
    segments: doc.segments.map((s) => ({ start: s.start, end: s.end, speaker: s.speaker, text: s.text })),
  };
}
