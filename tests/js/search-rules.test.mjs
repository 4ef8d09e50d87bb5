// Private transcripts are searched in the browser by the server's rules (appliance/web/static/search-rules-0.1.js
// mirrors appliance/transcripts/search.py): every word found, no false hits, in eight scripts.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { matcher, terms } from "../../appliance/web/static/search-rules-0.1.js";

const CASES = [
  // [language, a sentence, another sentence, a word only in the first, a false friend to reject]
  ["zh", "今天天气很好，我们去公园散步。", "明天下雨，我们在家看书。", ["天气", "公园", "去公园散步"], "天晴"],
  ["ja", "東京で会議があります。", "大阪は雨です。", ["会議", "東京"], "会社"],
  ["bn", "সমুদ্রের ধারে বালি আর ঝিনুক।", "আমি বাংলায় গান গাই।", ["বালি", "ঝিনুক"], "বাল্য"],
  ["gu", "અમે સાંજે ગીત ગાયું.", "હું ગુજરાતી બોલું છું.", ["ગીત", "સાંજે"], "ગીતા"],
  ["hi", "आज मौसम बहुत अच्छा है।", "कल बारिश होगी।", ["मौसम", "अच्छा"], "मौसमी"],
  ["ar", "سنذهب إلى السوق غدا صباحا", "الطقس جميل اليوم في المدينة", ["السوق", "صباحا"], "سوق"],
  ["ru", "Мы обсуждали бюджет на следующий год.", "Погода сегодня хорошая.", ["бюджет", "Бюджет год"], "жет"],
  ["fr", "Le café était très fort ce matin.", "Nous avons parlé du budget annuel.", ["café", "cafe", "matin", "Café fort"], "afé"],
];

for (const [language, said, other, found, falseFriend] of CASES) {
  test(`${language}: every word is found, only where it is`, () => {
    for (const query of found) {
      const match = matcher(query);
      assert.equal(match(said), true, `${query} in ${said}`);
      assert.equal(match(other), false, `${query} not in ${other}`);
    }
    // A Latin, Cyrillic or Arabic word is whole (a prefix at most); a longer substring-script word is not
    // found inside a shorter one.
    assert.equal(matcher(falseFriend)(said), language === "zh" || language === "ja" ? said.includes(falseFriend) : false, falseFriend);
  });
}

test("a query's words are letters, digits and marks; the rest separates them", () => {
  assert.deepEqual(terms("বালি আর"), ["বালি", "আর"]);
  assert.deepEqual(terms('"budget" AND 会议*'), ["budget", "and", "会议"]);
  assert.equal(matcher("udget")("the budget meeting"), false);  // not a word's middle
  assert.equal(matcher("budg")("the budget meeting"), true);    // the last word is a prefix
  assert.equal(matcher("")("anything"), false);
});
