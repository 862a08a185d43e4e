#!/usr/bin/env python3
"""The bundled text classifiers of WordNet glosses (issue 21): the demo Mamba LM (models/mamba-fortunes) and the
GPT-NeoX LM (models/gptneox-fortunes) fine-tuned to tell a noun gloss's lexicographer category, as
text_classifiers.py fine-tunes them on fortune topics (same procedure, tokenizer and BF16 export).

  python3 wordnet_classifiers.py --repo REPO --out OUT [--seconds 100]

Reads REPO/data/wordnet-glosses/{train,test}.jsonl (wordnet_glosses.py; the train split is made there at use
time, the test split is committed). Writes OUT/models/{mamba,gptneox}-wordnet (config, BF16 safetensors,
tokenizer, training.json) and OUT/golden/trained/{mamba,gptneox}-wordnet/test_logits.npy: the reference
modules' logits on the whole test split, in float32 from the shipped weights.
"""
import argparse, json, os
import torch
from tokenizers import Tokenizer

from text_classifiers import fine_tune_classifiers, per_label_counts
from wordnet_glosses import LABELS, LEXNAMES

TEST_FILE = "data/wordnet-glosses/test.jsonl"
TOKENIZER = "models/mamba-fortunes/tokenizer.json"          # every WordNet classifier's, and its pad id's


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_splits(repo):
    """The training and test glosses in repo, after printing their sizes and the test texts' token counts."""
    train = read_jsonl(os.path.join(repo, "data/wordnet-glosses/train.jsonl"))
    test = read_jsonl(os.path.join(repo, TEST_FILE))
    tok = Tokenizer.from_file(os.path.join(repo, TOKENIZER))
    lengths = sorted(len(tok.encode(r["text"]).ids) for r in test)
    print(f"{len(train)} train, {len(test)} test glosses; test tokens: median {lengths[len(lengths) // 2]}, max {lengths[-1]}", flush=True)
    return train, test


def about(train, test):
    """What a WordNet classifier's training.json says of its task and data."""
    return {"task": "lexicographer category of a WordNet noun gloss (" + ", ".join(LEXNAMES.values()) + ")",
            "data": "data/wordnet-glosses (wordnet_glosses.py, Debian wordnet-base 3.0)",
            "per_label_train_test": per_label_counts(train, test, LABELS)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=".")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=100)
    a = ap.parse_args()
    torch.manual_seed(0)
    train, test = read_splits(a.repo)
    lms = {"mamba": os.path.join(a.repo, "models/mamba-fortunes"), "gptneox": os.path.join(a.repo, "models/gptneox-fortunes")}
    models = os.path.join(a.out, "models")
    fine_tune_classifiers(train, test, Tokenizer.from_file(os.path.join(a.repo, TOKENIZER)), LABELS, lms,
                          {name: os.path.join(models, f"{name}-wordnet") for name in lms},
                          os.path.join(a.out, "golden/trained"), a.seconds, about(train, test), TEST_FILE)


if __name__ == "__main__":
    main()
