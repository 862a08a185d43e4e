#!/usr/bin/env python3
"""The reference dumps the verify tests read: dump_reference.py over every golden fixture model and every
bundled model, each beside its fixture as reference.safetensors.

  python3 reference_dumps.py --repo . --out DIR      (then copy DIR's tree over the repository)

Language models and text classifiers take their fixture's token ids (reference.json; a classifier's second
row, which ends in pads), bundled text models a sentence through their tokenizer, image models the first image
of their pixels.npy. untied_bf16 also gets reference_bf16.safetensors, the reference computed in bfloat16.
"""
import argparse, glob, json, os, sys, traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dump_reference import dump

GOLDEN = "engine/src/test/resources/golden"
SENTENCE = "The meaning of life is a question that every fortune cookie answers differently."


def jobs(repo):
    for config in sorted(glob.glob(os.path.join(repo, GOLDEN, "*", "*", "config.json"))):
        d = os.path.dirname(config)
        rel = os.path.relpath(d, repo)
        if json.load(open(config))["model_type"] in ("vit", "vim"):
            yield d, rel, dict(pixels=os.path.join(d, "pixels.npy"))
        else:
            ids = json.load(open(os.path.join(d, "reference.json")))["token_ids"]
            yield d, rel, dict(ids=ids[1] if isinstance(ids[0], list) else ids)
    for d in sorted(glob.glob(os.path.join(repo, "models", "*"))):
        name = os.path.basename(d)
        rel = os.path.join(GOLDEN, "trained", name)
        if json.load(open(os.path.join(d, "config.json")))["model_type"] in ("vit", "vim"):
            yield d, rel, dict(pixels=os.path.join(repo, rel, "pixels.npy"))
        else:
            yield d, rel, dict(text=SENTENCE)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", default=".")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    failed = 0
    for d, rel, inputs in jobs(a.repo):
        variants = [("reference.safetensors", "float32")]
        if rel.endswith("mamba/untied_bf16"):
            variants.append(("reference_bf16.safetensors", "bfloat16"))
        for name, dtype in variants:
            out = os.path.join(a.out, rel, name)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            try:
                print(json.dumps(dump(d, out, dtype=dtype, **inputs)), flush=True)
            except Exception:
                failed += 1
                print("FAILED", rel, name, traceback.format_exc(), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
