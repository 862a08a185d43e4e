#!/usr/bin/env python3
"""Golden input gradients for every language-model family: ∂logits[P, T] / ∂inputs_embeds by transformers' autograd,
the contract of `./mambalens gradient` (issue 18).

  python3 input_gradient_fixtures.py --repo . --out DIR        (PyTorch + transformers; CPU, float64)
  python3 input_gradient_fixtures.py --repo . --list           (no torch: the fixtures and the positions chosen)

For each language-model golden fixture (engine/src/test/resources/golden/{mamba,mamba2,rwkv,griffin,gptneox}/*) it
loads the checkpoint with AutoModelForCausalLM in float64 (eager attention), embeds the 40 prompt ids of
reference.json with the model's own input embeddings, and differentiates one logit with respect to those
embeddings as the model takes them, `model(inputs_embeds=E)`:

  - Griffin multiplies inputs_embeds by its normaliser √D (bfloat16-rounded) inside the model, so the gradient
    includes that factor; RWKV applies blocks.0.pre_ln to inputs_embeds; Mamba, Mamba-2 and GPT-NeoX feed them
    to the first block.
  - P = L − 4 (so the rows after P, which cannot reach the logit, must be zero) and T = the second most likely
    token at P (not the argmax, so nothing depends on it being the prediction).

It writes DIR/<fixture path>/, to be copied over the fixture directory:
  grad_inputs_embeds.npy   float32 [L, D]
  grad_inputs_embeds.json  {"tokens": [...], "position": P, "target": T, "logit": logits[P, T], "dtype": ...,
                            "max_abs_gradient": ..., "transformers_version": ...}
A family whose float64 pass fails falls back to float32 (the json says which); a fixture that fails altogether
is reported and skipped, so one failure does not lose the others.
"""
import argparse, json, os, traceback

GOLDEN = "engine/src/test/resources/golden"
FAMILIES = ("mamba", "mamba2", "rwkv", "griffin", "gptneox")


def fixtures(repo):
    """The language-model golden fixture directories (relative to the repository), in a fixed order."""
    found = []
    for family in FAMILIES:
        root = os.path.join(repo, GOLDEN, family)
        for name in sorted(os.listdir(root)):
            d = os.path.join(GOLDEN, family, name)
            if os.path.isfile(os.path.join(repo, d, "config.json")) and os.path.isfile(os.path.join(repo, d, "reference.json")):
                found.append(d)
    return found


def prompt(repo, fixture):
    """The fixture's prompt ids and the explained position P = L − 4."""
    ids = json.load(open(os.path.join(repo, fixture, "reference.json")))["token_ids"]
    return ids, len(ids) - 4


def second_best(row):
    """The index of the second largest value of a 1-D sequence (ties: the lower index first)."""
    order = sorted(range(len(row)), key=lambda i: (-float(row[i]), i))
    return order[1]


def input_gradient(repo, fixture, dtype_name):
    """(gradient [L, D] as float64 numpy, description dict) for one fixture in one dtype."""
    import torch
    from transformers import AutoModelForCausalLM
    dtype = getattr(torch, dtype_name)
    family = fixture.split("/")[-2]
    kwargs = {"attn_implementation": "eager"} if family in ("gptneox", "griffin") else {}
    model = AutoModelForCausalLM.from_pretrained(os.path.join(repo, fixture), dtype=dtype, **kwargs).eval()
    ids, position = prompt(repo, fixture)
    tokens = torch.tensor([ids])
    with torch.no_grad():
        by_ids = model(tokens, use_cache=False).logits[0]
    embeds = model.get_input_embeddings()(tokens).detach().to(dtype).requires_grad_(True)
    logits = model(inputs_embeds=embeds, use_cache=False).logits[0]
    same = float((logits.detach() - by_ids).abs().max() / by_ids.abs().max())      # reported, expected 0
    target = second_best(logits[position].detach().tolist())
    logits[position, target].backward()
    grad = embeds.grad[0].double().numpy()
    import numpy as np
    reference = np.load(os.path.join(repo, fixture, "logits.npy"))
    vs_fixture = float(np.abs(logits.detach().double().numpy() - reference).max() / np.abs(reference).max())
    later = float(np.abs(grad[position + 1:]).max()) if position + 1 < len(ids) else 0.0
    info = {"tokens": ids, "position": position, "target": target, "logit": float(logits[position, target]),
            "dtype": dtype_name, "max_abs_gradient": float(np.abs(grad).max()),
            "transformers_version": __import__("transformers").__version__}
    print(f"{fixture}: {dtype_name} P={position} T={target} logit={info['logit']:.6f} max|grad|={info['max_abs_gradient']:.4g} "
          f"logits vs logits.npy {vs_fixture:.2e}, inputs_embeds vs ids {same:.1e}, max|grad| after P {later:.1e}", flush=True)
    return grad, info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=".")
    ap.add_argument("--out")
    ap.add_argument("--list", action="store_true", help="print the fixtures and positions; needs no torch")
    a = ap.parse_args()
    if a.list:
        for f in fixtures(a.repo):
            ids, position = prompt(a.repo, f)
            print(f, "L", len(ids), "P", position)
        return
    import numpy as np
    import torch
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    failed = []
    for f in fixtures(a.repo):
        for dtype_name in ("float64", "float32"):
            try:
                grad, info = input_gradient(a.repo, f, dtype_name)
            except Exception:
                print(f"{f}: {dtype_name} failed:\n{traceback.format_exc()}", flush=True)
                continue
            out = os.path.join(a.out, f)
            os.makedirs(out, exist_ok=True)
            np.save(os.path.join(out, "grad_inputs_embeds.npy"), np.ascontiguousarray(grad, dtype=np.float32))
            json.dump(info, open(os.path.join(out, "grad_inputs_embeds.json"), "w"), indent=1)
            break
        else:
            failed.append(f)
    print("failed:", failed if failed else "none")


if __name__ == "__main__":
    main()
