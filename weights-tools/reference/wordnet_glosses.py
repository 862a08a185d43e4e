#!/usr/bin/env python3
"""WordNet glosses labelled by lexicographer file (issue 21): a large real labelled English text set.

  python3 wordnet_glosses.py [--wordnet /usr/share/wordnet] [--out data/wordnet-glosses]

Source: Debian's `wordnet-base` (WordNet 3.0, `apt-get install wordnet-base`), data.noun. A text is a
noun synset's gloss as WordNet writes it (the definition, then any quoted examples after "; "); its label
is the synset's lexicographer file, one of LEXNAMES: ten noun categories that are well apart. A gloss
that occurs in two categories is left out, one that occurs twice in one category is kept once, and so
is one longer than MAX_WORDS words. Per category, the glosses in synset order are shuffled (a sort
on rng.random() keys, rng = random.Random(SEED * 100 + lexicographer file number): Python keeps
random()'s sequence for a seed across versions), the first CAP are kept, and of those the first
TEST_SHARE are the test split. The training split stays in category order (the order the bundled classifiers
were trained from); the test split is put in a shuffled order (rng = random.Random(SEED), the same sort), so
that its first N texts — what `evaluate-text --limit N` reads — are a sample of every category.

Writes OUT/train.jsonl and OUT/test.jsonl: {"text", "label", "synset"} per line (label: the index in LABELS;
synset: the offset in data.noun).
"""
import argparse, json, os, random
from collections import defaultdict

SEED = 21
LEXNAMES = {5: "noun.animal", 6: "noun.artifact", 8: "noun.body", 13: "noun.food", 15: "noun.location",
            18: "noun.person", 20: "noun.plant", 23: "noun.quantity", 27: "noun.substance", 28: "noun.time"}
LABELS = [name.split(".")[1] for name in LEXNAMES.values()]
CAP, TEST_SHARE, MAX_WORDS = 4000, 0.2, 64


def synsets(path):
    """(offset, lexicographer file number, gloss) of every synset in a WordNet data file."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):                       # the licence header
                continue
            fields, gloss = line.split(" | ", 1)
            parts = fields.split()
            yield parts[0], int(parts[1]), gloss.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--out", default="data/wordnet-glosses")
    a = ap.parse_args()
    by_gloss = defaultdict(list)
    for offset, lex, gloss in synsets(os.path.join(a.wordnet, "data.noun")):
        if lex in LEXNAMES:
            by_gloss[gloss].append((offset, lex))
    per_label = defaultdict(list)
    for gloss, places in by_gloss.items():
        if len({lex for _, lex in places}) == 1 and len(gloss.split()) <= MAX_WORDS:
            offset, lex = places[0]
            per_label[lex].append({"text": gloss, "label": list(LEXNAMES).index(lex), "synset": offset})
    train, test = [], []
    for lex in LEXNAMES:
        rows = sorted(per_label[lex], key=lambda r: r["synset"])
        rng = random.Random(SEED * 100 + lex)
        keys = [rng.random() for _ in rows]
        rows = [r for _, r in sorted(zip(keys, rows), key=lambda kr: kr[0])][:CAP]
        n_test = round(TEST_SHARE * len(rows))
        test += rows[:n_test]
        train += rows[n_test:]
        print(f"{LEXNAMES[lex]}: {len(per_label[lex])} glosses, {len(rows) - n_test} train, {n_test} test")
    rng = random.Random(SEED)
    keys = [rng.random() for _ in test]
    test = [r for _, r in sorted(zip(keys, test), key=lambda kr: kr[0])]
    os.makedirs(a.out, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        with open(os.path.join(a.out, f"{name}.jsonl"), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(train)} train, {len(test)} test")


if __name__ == "__main__":
    main()
