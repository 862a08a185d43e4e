#!/usr/bin/env python3
"""Standard errors for `evaluate`'s perturbation AUCs: from DIR/per_image.csv, per model and method the mean AUC
over images (as results.md has it), its standard error, and the paired difference from the random map with its
standard error (the same images, so the pairing removes the images' own difficulty). numpy only.

  python3 scripts/analysis/auc_errors.py DIR
"""
import csv, sys
from collections import defaultdict
import numpy as np

STEPS = np.arange(10) / 10


def main():
    rows = list(csv.DictReader(open(sys.argv[1] + "/per_image.csv")))
    auc = defaultdict(dict)                                  # (model, method, side) -> {image: AUC}
    for r in rows:
        for side in ("positive", "negative"):
            curve = np.array([float(r[f"{side}_{k * 10}"]) for k in range(10)]) * 100
            auc[(r["model"], r["method"], side)][r["image"]] = float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(STEPS)))
    print("| model | method | positive AUC ± SE | − random ± SE | negative AUC ± SE | − random ± SE |")
    print("|---|---|---|---|---|---|")
    for model, method in sorted({(m, k) for m, k, _ in auc}, key=lambda mk: (mk[0], mk[1] == "random", mk[1])):
        cells = []
        for side in ("positive", "negative"):
            mine, chance = auc[(model, method, side)], auc[(model, "random", side)]
            images = sorted(mine)
            a = np.array([mine[i] for i in images])
            d = a - np.array([chance[i] for i in images])
            se = lambda v: v.std(ddof=1) / np.sqrt(len(v))
            cells += [f"{a.mean():.2f} ± {se(a):.2f}", "" if method == "random" else f"{d.mean():+.2f} ± {se(d):.2f}"]
        print(f"| {model} | {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
