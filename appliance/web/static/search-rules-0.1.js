// The server's search rules (appliance/transcripts/search.py), for private transcripts searched in the
// browser: a query's words are runs of letters, digits and combining marks (a Bengali vowel sign belongs
// to its word). Words in scripts written without spaces (CJK, kana, Thai…) or with vowel signs (the
// Indic scripts) are found as substrings, as the trigram index finds them; words in other scripts (Latin,
// Cyrillic, Arabic, Greek…) must match a whole word, the last one as a prefix (results while typing),
// accents ignored, as the word index (unicode61) matches them. All words must be in the segment.

const SUBSTRING_SCRIPTS = [
  [0x0900, 0x0DFF], [0x0E00, 0x0EFF], [0x0F00, 0x0FFF], [0x1000, 0x109F], [0x1780, 0x17FF],
  [0x3040, 0x30FF], [0x31F0, 0x31FF], [0x3400, 0x4DBF], [0x4E00, 0x9FFF], [0xF900, 0xFAFF], [0x20000, 0x2FA1F],
];
const WORD = /[\p{L}\p{N}\p{M}_]+/gu;
const MAX_TERMS = 12;

const inSubstringScript = (ch) => { const c = ch.codePointAt(0); return SUBSTRING_SCRIPTS.some(([lo, hi]) => lo <= c && c <= hi); };
const fold = (s) => s.normalize("NFKC").toLowerCase();
// unicode61's remove_diacritics: accents off Latin letters only (an Arabic or Indic mark is part of the word).
const bare = (word) => word.normalize("NFD").replace(/([A-Za-z])\p{Mn}+/gu, "$1").normalize("NFC");

export function terms(text) { return (fold(text).match(WORD) || []).slice(0, MAX_TERMS); }

// A test for one segment's text: true when every word of the query is in it.
export function matcher(query) {
  const all = terms(query);
  const grams = all.filter((t) => [...t].some(inSubstringScript));
  const words = all.filter((t) => ![...t].some(inSubstringScript)).map(bare);
  if (!all.length) return () => false;
  return (text) => {
    const folded = fold(text || "");
    if (!grams.every((g) => folded.includes(g))) return false;
    if (!words.length) return true;
    const have = (folded.match(WORD) || []).map(bare);
    return words.every((w, i) => have.some((h) => (i === words.length - 1 ? h.startsWith(w) : h === w)));
  };
}
