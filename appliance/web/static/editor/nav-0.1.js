// Moving the keyboard focus through the transcript: one Tab stop, arrow keys inside it (a roving
// tabindex). A position is {seg, word} by index; a segment without words is a stop of its own (word 0).
// counts[i] is the number of words of segment i. No DOM here (tests run it under `node --test`).

export function move(counts, pos, key, { ctrl = false } = {}) {
  if (!counts.length) return null;
  const last = counts.length - 1;
  const seg = Math.min(Math.max(pos.seg, 0), last);
  const lastWord = (i) => Math.max(0, counts[i] - 1);
  const word = Math.min(Math.max(pos.word, 0), lastWord(seg));
  switch (key) {
    case "ArrowRight":
      if (word < lastWord(seg)) return { seg, word: word + 1 };
      return seg < last ? { seg: seg + 1, word: 0 } : { seg, word };
    case "ArrowLeft":
      if (word > 0) return { seg, word: word - 1 };
      return seg > 0 ? { seg: seg - 1, word: lastWord(seg - 1) } : { seg, word };
    case "ArrowDown": return { seg: Math.min(seg + 1, last), word: 0 };
    case "ArrowUp": return { seg: Math.max(seg - 1, 0), word: 0 };
    case "Home": return ctrl ? { seg: 0, word: 0 } : { seg, word: 0 };
    case "End": return ctrl ? { seg: last, word: lastWord(last) } : { seg, word: lastWord(seg) };
    case "PageDown": return { seg: Math.min(seg + 10, last), word: 0 };
    case "PageUp": return { seg: Math.max(seg - 10, 0), word: 0 };
    default: return null;
  }
}

export const countsOf = (model) => model.segments.map((s) => s.words.length);

// The position of a segment's word after the segment list changed: the same sid if it is still there.
export function keep(model, sid, word) {
  const i = model.segments.findIndex((s) => s.sid === sid);
  if (i < 0) return { seg: 0, word: 0 };
  return { seg: i, word: Math.min(word, Math.max(0, model.segments[i].words.length - 1)) };
}
