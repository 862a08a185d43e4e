#!/usr/bin/env python3
"""Runs the Java engine's CLI on a fixture directory made by mamba_fixtures.py and compares it with
the reference outputs there: logits (max |diff| / max |ref|, must be < 1e-4) and greedy ids (identical).

  python3 compare_engine.py FIXTURE_DIR -- java --add-modules jdk.incubator.vector -jar mambalens.jar
Exit status 0 when both hold.
"""
import json, os, subprocess, sys, tempfile
import numpy as np

d = sys.argv[1]
java = sys.argv[sys.argv.index("--") + 1:]
ref = json.load(open(os.path.join(d, "reference.json")))
ids = ",".join(map(str, ref["token_ids"]))
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "logits.npy")
    subprocess.run(java + ["forward", "--model", d, "--token-ids", ids, "--out", out], check=True)
    got, want = np.load(out), np.load(os.path.join(d, "logits.npy"))
rel = float(np.abs(got - want).max() / np.abs(want).max())
extra = {}
if os.path.exists(os.path.join(d, "logits_f64.npy")):     # how far each float32 result is from float64
    exact = np.load(os.path.join(d, "logits_f64.npy"))
    scale = np.abs(exact).max()
    extra = {"engine_vs_f64": float(np.abs(got - exact).max() / scale),
             "reference_f32_vs_f64": float(np.abs(want - exact).max() / scale)}
prompt = ref["greedy_prompt"]
gen = subprocess.run(java + ["generate", "--model", d, "--token-ids", ",".join(map(str, prompt)), "--greedy",
                             "--print-ids", "--ignore-eos", "--max-new-tokens", str(len(ref["greedy_ids"]) - len(prompt))],
                     check=True, capture_output=True, text=True)
greedy = [int(t) for t in gen.stdout.strip().split(",")]
ok = rel < 1e-4 and greedy == ref["greedy_ids"]
print(json.dumps({"fixture": ref["config"], "tokens": len(ref["token_ids"]), "logits_shape": list(want.shape),
                  "max_rel_error": rel, **extra, "greedy_identical": greedy == ref["greedy_ids"], "engine_greedy": greedy[len(prompt):],
                  "reference_greedy": ref["greedy_ids"][len(prompt):], "ok": ok}))
sys.exit(0 if ok else 1)
