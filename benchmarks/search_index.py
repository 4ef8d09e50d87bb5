"""The search index on a library of transcripts in nine scripts: size, query time, and whether every
word is found without false hits, for the word index alone (before) and the word + trigram indexes that
search uses now (after), in the same run.

    python benchmarks/search_index.py [--transcripts 2000] [--segments 20] [--queries 400]

The library is made here: each transcript is in one language (Chinese, Japanese, Bengali, Gujarati, Hindi,
Arabic, Russian, French, English), its segments sentences drawn from that language's list, stored through
the real store into a real SQLite file with the real migrations. Queries are words that occur (each must
find exactly the segments that contain it) and words that do not (each must find nothing).

"Before" is the word index (unicode61) queried the way search did before the trigram index existed: the
typed text cut into runs of `\\w` (which drops Indic vowel signs), each a quoted term, the last a prefix. Its size is the same file with the trigram index dropped.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from appliance.core import migrations
from appliance.core.db import connect
from appliance.transcription.asr import AsrResult, Segment, Word
from appliance.transcripts import search
from appliance.transcripts import store as transcripts

# Sentences a meeting might hold, and words to search for: some in the sentences, some absent (same script).
LANGUAGES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "zh": (
        [
            "今天的天气很好，我们去公园散步吧。",
            "预算会议推迟到下周三下午。",
            "请把报告发给财务部门的同事。",
            "医院的新设备已经安装完成了。",
            "我们需要在月底之前完成这个项目。",
            "他在会议上提出了一个很好的建议。",
        ],
        ["天气", "公园", "预算", "财务部门", "新设备", "建议"],
        ["火车站", "图书馆", "咖啡"],
    ),
    "ja": (
        [
            "明日の会議は午後三時から始まります。",
            "予算の見直しについて話し合いましょう。",
            "新しい病院の設備が届きました。",
            "報告書を金曜日までに提出してください。",
            "天気が良ければ公園で昼食を食べます。",
            "お客様からの質問に答えました。",
        ],
        ["会議", "予算", "設備", "報告書", "公園", "質問"],
        ["新幹線", "図書館", "コーヒー"],
    ),
    "bn": (
        [
            "আজ আবহাওয়া খুব ভালো, চলো বাইরে যাই।",
            "বাজেট সভা আগামী সপ্তাহে হবে।",
            "হাসপাতালের নতুন যন্ত্র এসেছে।",
            "প্রতিবেদনটি শুক্রবারের মধ্যে পাঠান।",
            "নদীর তীরে বালি উড়ছিল।",
            "তিনি একটি সুন্দর গান গাইলেন।",
        ],
        ["আবহাওয়া", "বাজেট", "হাসপাতালের", "প্রতিবেদনটি", "বালি", "গান"],
        ["রেলস্টেশন", "গ্রন্থাগার", "কফি"],
    ),
    "gu": (
        [
            "આજે હવામાન ખૂબ સરસ છે.",
            "બજેટ બેઠક આવતા અઠવાડિયે થશે.",
            "હોસ્પિટલમાં નવું સાધન આવ્યું છે.",
            "અહેવાલ શુક્રવાર સુધીમાં મોકલો.",
            "તેણે એક સુંદર ગીત ગાયું.",
            "ગ્રાહકના પ્રશ્નોના જવાબ આપ્યા.",
        ],
        ["હવામાન", "બજેટ", "હોસ્પિટલમાં", "અહેવાલ", "ગીત", "ગ્રાહકના"],
        ["રેલવે", "પુસ્તકાલય", "કોફી"],
    ),
    "hi": (
        [
            "आज मौसम बहुत अच्छा है, चलो पार्क चलें।",
            "बजट बैठक अगले हफ्ते होगी।",
            "अस्पताल में नई मशीन आ गई है।",
            "रिपोर्ट शुक्रवार तक भेज दीजिए।",
            "उन्होंने बैठक में एक अच्छा सुझाव दिया।",
            "ग्राहकों के सवालों के जवाब दिए।",
        ],
        ["मौसम", "बजट", "अस्पताल", "रिपोर्ट", "सुझाव", "ग्राहकों"],
        ["रेलगाड़ी", "पुस्तकालय", "कॉफ़ी"],
    ),
    "ar": (
        [
            "الطقس جميل اليوم، لنذهب إلى الحديقة.",
            "تم تأجيل اجتماع الميزانية إلى الأسبوع المقبل.",
            "وصلت الأجهزة الجديدة إلى المستشفى.",
            "أرسل التقرير قبل يوم الجمعة من فضلك.",
            "قدم اقتراحا جيدا في الاجتماع.",
            "أجبنا عن أسئلة العملاء.",
        ],
        ["الطقس", "الميزانية", "المستشفى", "التقرير", "اقتراحا", "العملاء"],
        ["القطار", "المكتبة", "القهوة"],
    ),
    "ru": (
        [
            "Сегодня хорошая погода, пойдём в парк.",
            "Совещание по бюджету перенесли на среду.",
            "В больницу привезли новое оборудование.",
            "Пришлите отчёт до пятницы, пожалуйста.",
            "Он предложил на встрече хорошую идею.",
            "Мы ответили на вопросы клиентов.",
        ],
        ["погода", "бюджету", "больницу", "отчёт", "встрече", "клиентов"],
        ["поезд", "библиотека", "кофе"],
    ),
    "fr": (
        [
            "Il fait beau aujourd'hui, allons au parc.",
            "La réunion sur le budget est reportée à mercredi.",
            "L'hôpital a reçu le nouvel équipement.",
            "Envoyez le rapport avant vendredi, s'il vous plaît.",
            "Elle a proposé une idée intéressante.",
            "Nous avons répondu aux questions des clients.",
        ],
        ["réunion", "budget", "hôpital", "rapport", "intéressante", "clients"],
        ["train", "bibliothèque", "café"],
    ),
    "en": (
        [
            "The weather is lovely today, let us walk to the park.",
            "The budget meeting moved to next Wednesday.",
            "The hospital received its new equipment.",
            "Please send the report before Friday.",
            "She proposed an interesting idea at the meeting.",
            "We answered the customers' questions.",
        ],
        ["weather", "budget", "hospital", "report", "interesting", "customers"],
        ["train", "library", "coffee"],
    ),
}


def _store(db: sqlite_utils.Database, language: str, sentences: list[str], workspace: str) -> None:
    segments = []
    for i, text in enumerate(sentences):
        start = i * 4.0
        segments.append(Segment(start, start + 3.5, text, [Word(start, start + 3.5, text, 0.9)]))
    transcripts.store(
        db,
        AsrResult(segments, language, 1.0, len(sentences) * 4.0, 0.1),
        job_id=None,
        filename=f"{language}.wav",
        size_bytes=1,
        model="tiny",
        options={},
        timings={},
        workspace_id=workspace,
    )


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def expected(db: sqlite_utils.Database, word: str) -> int:
    """Segments that hold the word by search's own promise: a substring in scripts searched by substring,
    else a whole word (the typed word a prefix of it)."""
    substring = any(search._in_substring_script(c) for c in word)
    needle = _fold(word)
    count = 0
    for row in db.query("SELECT text FROM segments"):
        text = _fold(row["text"])
        if substring:
            count += needle in text
        else:
            count += any(t.startswith(needle) for t in (_fold(x) for x in search.terms(text)))
    return count


_OLD_TERM = re.compile(r"\w+")  # the query builder's word rule before the trigram index (\w: no vowel signs)


def before(db: sqlite_utils.Database, word: str, workspace: str) -> int:
    """The word index alone, asked as search asked it before the trigram index: the typed text cut into
    runs of \\w, each a quoted term, the last a prefix."""
    quoted = " ".join(f'"{t}"' for t in _OLD_TERM.findall(word)) + "*"
    sql_from = (
        "FROM segments_fts JOIN segments s ON s.id = segments_fts.rowid JOIN transcripts t ON t.id = s.transcript_id "
        "WHERE segments_fts MATCH ? AND t.workspace_id = ? AND t.private = 0"
    )
    total = next(iter(db.query(f"SELECT count(*) AS n {sql_from}", [quoted, workspace])))["n"]
    # The page of hits with their snippets, as search returns them (the same work as `after`).
    list(
        db.query(
            f"SELECT s.id, snippet(segments_fts, 0, '[', ']', '…', 16) {sql_from} ORDER BY rank LIMIT 20", [quoted, workspace]
        )
    )
    return int(total)


def after(db: sqlite_utils.Database, word: str, workspace: str) -> int:
    return int(search.search(db, word, workspace_ids=[workspace], limit=20)["total"])


def timed(run: Callable[[str], int], words: list[str], rounds: int) -> tuple[list[float], dict[str, int]]:
    times, counts = [], {}
    for _ in range(rounds):
        for word in words:
            t0 = time.perf_counter()
            counts[word] = run(word)
            times.append((time.perf_counter() - t0) * 1000)
    return times, counts


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def file_size(db: sqlite_utils.Database, path: Path) -> int:
    db.execute("VACUUM")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transcripts", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--queries", type=int, default=400, help="timed queries for each index (rounds over the word list)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "library.db"
        db = connect(path)
        migrations.apply(db)
        db.execute("INSERT INTO workspaces (id, name, created_at) VALUES ('w', 'w', '2026-01-01')")
        codes = list(LANGUAGES)
        t0 = time.perf_counter()
        for i in range(args.transcripts):
            code = codes[i % len(codes)]
            sentences = LANGUAGES[code][0]
            _store(db, code, [rng.choice(sentences) for _ in range(args.segments)], "w")
        stored = time.perf_counter() - t0
        present = [w for code in codes for w in LANGUAGES[code][1]]
        absent = [w for code in codes for w in LANGUAGES[code][2]]
        words = present + absent
        truth = {w: expected(db, w) for w in words}
        assert all(truth[w] > 0 for w in present) and all(truth[w] == 0 for w in absent), "corpus and word lists disagree"
        rounds = max(1, args.queries // len(words))
        after_ms, after_counts = timed(lambda w: after(db, w, "w"), words, rounds)
        before_ms, before_counts = timed(lambda w: before(db, w, "w"), words, rounds)
        size_after = file_size(db, path)
        for name in ("segments_grams_insert", "segments_grams_delete", "segments_grams_update"):
            db.execute(f"DROP TRIGGER {name}")
        db.execute("DROP TABLE segments_grams")
        size_before = file_size(db, path)
        segments = args.transcripts * args.segments
    print(f"library: {args.transcripts} transcripts, {segments} segments, 9 scripts (stored in {stored:.1f} s)")
    print(f"queries: {len(present)} words present, {len(absent)} absent; {rounds} rounds each")
    for label, counts in (("before (word index)", before_counts), ("after (word + trigram)", after_counts)):
        found = sum(counts[w] == truth[w] for w in present)
        false = sum(counts[w] > truth[w] for w in words)
        missed = sum(counts[w] < truth[w] for w in present)
        print(f"{label}: exact {found}/{len(present)} present words; {missed} words under-found; {false} words with false hits")
        wrong = [f"{w}({counts[w]}/{truth[w]})" for w in words if counts[w] != truth[w]]
        if wrong:
            print(f"  differing (found/expected): {' '.join(wrong)}")
    print(f"query ms, before: p50 {statistics.median(before_ms):.2f} p95 {p(before_ms, 95):.2f}")
    print(f"query ms, after:  p50 {statistics.median(after_ms):.2f} p95 {p(after_ms, 95):.2f}")
    print(f"p95 ratio after/before: {p(after_ms, 95) / p(before_ms, 95):.2f}")
    # Words of one or two characters in the substring scripts are below the trigram length: a LIKE over rows.
    short = {w for w in words if search.plan(w).short}
    by_kind = {"short (LIKE)": [], "other": []}  # type: dict[str, list[float]]
    for i, ms in enumerate(after_ms):
        by_kind["short (LIKE)" if words[i % len(words)] in short else "other"].append(ms)
    print("after, p95 by kind: " + "; ".join(f"{k} {p(v, 95):.2f} ms ({len(v)} queries)" for k, v in by_kind.items() if v))
    print(
        f"database size, before: {size_before / 1e6:.1f} MB; after: {size_after / 1e6:.1f} MB (ratio {size_after / size_before:.2f})"
    )
    exact_after = sum(after_counts[w] == truth[w] for w in words)
    print(f"after: every word exact: {'yes' if exact_after == len(words) else 'no'}")
    sys.exit(0 if exact_after == len(words) else 1)


if __name__ == "__main__":
    main()
