// Mapping edited text back onto timed words, for one segment at a time (see docs/decisions.md,
// "Editor"). Exact matches keep their times; each run between matches is re-timed as a block.
// Times are whole milliseconds. Works in the browser and under `node --test`.

const EDGE_PUNCT = /^[\p{P}\p{S}]+|[\p{P}\p{S}]+$/gu;
const MIN_WORD_MS = 60;

export function norm(word) {
  return word.normalize("NFKC").toLowerCase().replace(EDGE_PUNCT, "");
}

export function tokens(text) {
  return text.split(/\s+/u).filter(Boolean);
}

// Edit-distance alignment with match 0, insert 1, delete 1, substitute 2 (a substitution never
// beats an exact match elsewhere, so times do not slide onto the wrong words).
// Returns pairs [i, j] of matched positions, in order.
export function matches(a, b) {
  const n = a.length, m = b.length;
  const cost = new Uint32Array((n + 1) * (m + 1));
  const at = (i, j) => i * (m + 1) + j;
  for (let i = 0; i <= n; i++) cost[at(i, 0)] = i;
  for (let j = 0; j <= m; j++) cost[at(0, j)] = j;
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      const diag = cost[at(i - 1, j - 1)] + (a[i - 1] === b[j - 1] ? 0 : 2);
      cost[at(i, j)] = Math.min(diag, cost[at(i - 1, j)] + 1, cost[at(i, j - 1)] + 1);
    }
  }
  const pairs = [];
  let i = n, j = m;
  while (i > 0 && j > 0) {
    const here = cost[at(i, j)];
    if (a[i - 1] === b[j - 1] && here === cost[at(i - 1, j - 1)]) { pairs.push([i - 1, j - 1]); i--; j--; }
    else if (here === cost[at(i - 1, j - 1)] + 2) { i--; j--; }
    else if (here === cost[at(i - 1, j)] + 1) { i--; }
    else { j--; }
  }
  return pairs.reverse();
}

function share(words, start, end, estimated) {
  const weights = words.map((w) => Math.max(1, w.length));
  const total = weights.reduce((x, y) => x + y, 0);
  let t = start, acc = 0;
  return words.map((text, k) => {
    acc += weights[k];
    const e = k === words.length - 1 ? end : Math.round(start + ((end - start) * acc) / total);
    const word = { t: text, s: t, e, c: null, edited: true, est: estimated };
    t = e;
    return word;
  });
}

// old: [{t, s, e, c, edited, est}], text: the segment's new text, bounds: {s, e} of the segment.
// Returns {words, changedShare} where changedShare is the fraction of new words not matched exactly.
export function realign(old, text, bounds) {
  const fresh = tokens(text);
  const pairs = matches(old.map((w) => norm(w.t)), fresh.map(norm));
  const out = [];
  let oi = 0, ni = 0;
  const flush = (oEnd, nEnd) => {
    const o = old.slice(oi, oEnd), n = fresh.slice(ni, nEnd);
    if (n.length === 0) { /* deleted words: their time becomes silence */ }
    else if (o.length === n.length) {
      n.forEach((t, k) => out.push({ ...o[k], t, edited: o[k].edited || t !== o[k].t, c: t === o[k].t ? o[k].c : null }));
    } else if (o.length === 0) {
      const prev = out.length ? out[out.length - 1] : null;
      const next = oEnd < old.length ? old[oEnd] : null;
      let a = prev ? prev.e : bounds.s, b = next ? next.s : bounds.e;
      let est = false;
      if (b - a < MIN_WORD_MS * n.length) {  // no room: borrow the neighbours' span and say so
        a = prev ? prev.s : Math.min(a, bounds.s); b = next ? next.e : Math.max(b, bounds.e); est = true;
        if (b - a < MIN_WORD_MS * n.length) b = a + MIN_WORD_MS * n.length;
      }
      out.push(...share(n, a, b, est));
    } else {
      out.push(...share(n, o[0].s, o[o.length - 1].e, false));
    }
    oi = oEnd; ni = nEnd;
  };
  for (const [i, j] of pairs) {
    flush(i, j);
    const w = old[i];
    out.push({ ...w, t: fresh[j], edited: w.edited || fresh[j] !== w.t });
    oi = i + 1; ni = j + 1;
  }
  flush(old.length, fresh.length);
  const exact = pairs.filter(([i, j]) => old[i].t === fresh[j]).length;
  return { words: out, changedShare: fresh.length ? 1 - exact / fresh.length : (old.length ? 1 : 0) };
}
