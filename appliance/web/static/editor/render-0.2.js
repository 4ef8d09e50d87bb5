// The transcript's DOM, built from the model one segment at a time. Every function takes the document
// to build with, so tests can pass a small stand-in and run this under `node --test`.

const el = (doc, tag, cls, text) => {
  const node = doc.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
};

// The page's language (static/i18n-0.1.js); under node --test, the English with its values filled in.
const t = (message, values) => (globalThis.SottoI18n ? globalThis.SottoI18n.t(message, values)
  : message.replace(/\{([a-z_0-9]+)\}/g, (whole, name) => (values && name in values ? String(values[name]) : whole)));

export const DOUBTFUL = 0.75;

// Speaker colours follow the speaker list's order (twelve, then again), always shown with the name.
export const colourMap = (model) => new Map(model.speakers.map((s, i) => [s.id, i % 12]));

export function wordSpan(doc, w) {
  const span = el(doc, "span", "w" + (w.c != null && w.c < 0.5 && !w.edited ? " lc" : "") + (w.est ? " est" : ""), w.t);
  span.dataset.s = w.s; span.dataset.e = w.e;
  return span;
}

// ctx: {editable, colours, name(id), clock(ms), prevSpeaker}. A segment's tools are not in it: they sit
// in one bar that never moves, so nothing shifts under the pointer between the two clicks of a
// double-click, and no destructive button is ever where a click on the text lands.
export function renderSegment(doc, seg, ctx) {
  const section = el(doc, "section", `seg spk-${ctx.colours.get(seg.speaker) || 0}`);
  section.id = `s-${seg.sid}`; section.dataset.sid = seg.sid; section.dataset.s = seg.s; section.dataset.e = seg.e;
  const meta = el(doc, "div", "seg-meta");
  const time = el(doc, "button", "seg-time", ctx.clock(seg.s));
  time.type = "button"; time.dataset.seek = seg.s; time.tabIndex = -1;  // the transcript is one Tab stop
  time.title = ctx.editable ? t("Play from here (Alt+click: change timing)") : t("Play from here");
  meta.appendChild(time);
  if (seg.speaker || ctx.editable) {
    const spk = el(doc, "button", "seg-spk" + (seg.speaker && seg.speaker === ctx.prevSpeaker ? " same" : ""), seg.speaker ? ctx.name(seg.speaker) : t("No speaker"));
    spk.type = "button"; spk.tabIndex = -1;
    // The speaker engine gave this speaker less than three quarters of the segment's speech: worth a look.
    if (seg.speaker && seg.sc != null && seg.sc < DOUBTFUL) {
      spk.className += " doubt";
      spk.title = t("Speaker not certain ({percent}% of this speech): check it", { percent: Math.round(seg.sc * 100) });
      spk.setAttribute("aria-description", spk.title);
    }
    if (ctx.editable) spk.setAttribute("aria-haspopup", "dialog"); else spk.disabled = true;
    meta.appendChild(spk);
  }
  const body = el(doc, "div", "seg-body");
  const p = el(doc, "p", "seg-text");
  p.setAttribute("dir", "auto");  // the transcript's own script decides, whatever the page's direction
  seg.words.forEach((w, i) => { if (i) p.appendChild(doc.createTextNode(" ")); p.appendChild(wordSpan(doc, w)); });
  body.appendChild(p);
  if (seg.note) body.appendChild(el(doc, "p", "seg-note", t("Note: {note}", { note: seg.note })));
  section.append(meta, body);
  return section;
}

export function talkTimes(model) {
  const talk = new Map();
  for (const seg of model.segments) if (seg.speaker) talk.set(seg.speaker, (talk.get(seg.speaker) || 0) + (seg.e - seg.s));
  return talk;
}

// The side panel's speaker list: swatch, name, talk time and (for editors) a rename button.
export function speakerItems(doc, model, { editable, colours, clock }) {
  const talk = talkTimes(model);
  const items = model.speakers.map((s) => {
    const li = el(doc, "li"); li.dataset.speaker = s.id;
    li.append(el(doc, "span", `swatch spk-${colours.get(s.id)}`), el(doc, "span", "spk-name", s.name), el(doc, "span", "muted", clock(talk.get(s.id) || 0)));
    if (editable) {
      const b = el(doc, "button", "link spk-rename", t("Rename"));
      b.type = "button"; b.setAttribute("aria-label", t("Rename {name}", { name: s.name }));
      li.appendChild(b);
    }
    return li;
  });
  if (!items.length) items.push(el(doc, "li", "muted", t("No speakers identified.")));
  return items;
}
