#!/usr/bin/env python3
"""The explainability core done the naive way in PyTorch (CPU), for the same-run comparison with
ExplainBenchmark: every layer's hidden attention [E, L, L] built row by row from the definition
(α_c[i, j] = Σ_n C_i[n]·exp(A[c, n]·(S_i − S_j))·Δ_j·B_j[n], vectorised over channels, j and n), the
layer summary (channel mean, positive mean, min, max; Vision Mamba with both directions combined), and
the rollout with whole matrices.

  python3 benchmarks/xai_naive_torch.py --vim DIR --lm DIR [--tokens 1024] [--lm-layers K] [--threads T] --out FILE.json

The forward passes that record Δ, B, C are not timed (ExplainBenchmark does not time them either).
Language model: the first K layers are timed (each costs the same) and the per-layer mean is scaled to all layers.
"""
import argparse, json, os, sys, time
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "weights-tools", "reference"))


def naive_alpha(delta, B, C, A):
    """[E, L, L] from Δ [L, E], B, C [L, N], A [E, N]."""
    L, E = delta.shape
    S = torch.cumsum(delta, 0)
    out = torch.zeros(E, L, L)
    for i in range(L):
        P = torch.exp((S[i] - S[:i + 1])[:, :, None] * A[None])          # [i+1, E, N]
        out[:, i, :i + 1] = (torch.einsum("jen,jn,n->ej", P, B[:i + 1], C[i]) * delta[:i + 1].T)
    return out


def summary(t):
    return t.mean(0), t.clamp(min=0).mean(0), t.min(), t.max()


def rollout(means, start, row):
    L = means[0].shape[0]
    eye = torch.eye(L)
    joint = None
    for m in means[start:]:
        a = m + eye
        a = a / a.sum(-1, keepdim=True)
        joint = a if joint is None else a @ joint
    return joint[row]


def vim_traces(d):
    from vim_torch import VisionMamba
    from vim_fixtures import internals
    c = json.load(open(os.path.join(d, "config.json")))
    model = VisionMamba(c).eval()
    model.load_state_dict(load_file(os.path.join(d, "model.safetensors")))
    seen = {}
    with torch.no_grad():
        model(torch.randn(1, c["channels"], c["img_size"], c["img_size"]), parallel=True,
              hidden_hook=lambda i, r: seen.__setitem__(i, r.clone()))
        traces = []
        for i, layer in enumerate(model.layers):
            h = layer.norm(seen[i])
            both = []
            for b in ("", "_b"):
                t = internals(layer.mixer, h, b)
                A = -torch.exp(getattr(layer.mixer, "A_log" if not b else "A_b_log"))
                both.append((t["delta"], t["B"], t["C"], A))
            traces.append(both)
    return traces, model.cls_position(len(seen[0][0]) - 1)


def lm_traces(d, tokens, layers):
    from transformers import MambaForCausalLM
    model = MambaForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    xz = {}
    for l, block in enumerate(model.backbone.layers[:layers]):
        block.mixer.in_proj.register_forward_hook(lambda mod, i, o, l=l: xz.__setitem__(l, o[0].detach()))
    with torch.no_grad():
        model(torch.randint(0, model.config.vocab_size, (1, tokens)), use_cache=False)
        traces = []
        for l in range(layers):
            m = model.backbone.layers[l].mixer
            E, N = m.A_log.shape
            K, R = m.conv1d.kernel_size[0], m.dt_proj.in_features
            x = xz[l][:, :E]
            s = F.conv1d(x.T[None], m.conv1d.weight, m.conv1d.bias, padding=K - 1, groups=E)[0, :, :tokens].T
            u = F.silu(s)
            dt, B, C = torch.split(u @ m.x_proj.weight.T, [R, N, N], dim=-1)
            delta = F.softplus(dt @ m.dt_proj.weight.T + m.dt_proj.bias)
            traces.append((delta, B, C, -torch.exp(m.A_log)))
    return traces, model.config.num_hidden_layers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vim", required=True)
    ap.add_argument("--lm", required=True)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--lm-layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    result = {"threads": a.threads, "torch": torch.__version__}

    traces, cls = vim_traces(a.vim)
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        with torch.no_grad():
            means = []
            for fwd, bwd in traces:
                combined = naive_alpha(*fwd) + naive_alpha(*bwd).flip(1, 2)
                means.append(summary(combined)[0])
            rollout(means, len(traces) * 15 // 24, cls)
        times.append(time.perf_counter() - t0)
    result["vim_tiny_224_s"] = min(times)
    print(f"ViM-tiny 224, {len(traces)} layers, both directions: naive PyTorch {min(times):.3f} s (best of {a.repeats})", flush=True)

    traces, depth = lm_traces(a.lm, a.tokens, a.lm_layers)
    t0 = time.perf_counter()
    with torch.no_grad():
        means = [summary(naive_alpha(*t))[0] for t in traces]
        rollout(means, 0, a.tokens - 1)
    per_layer = (time.perf_counter() - t0) / len(traces)
    result.update(lm_tokens=a.tokens, lm_layers_timed=len(traces), lm_per_layer_s=per_layer, lm_all_layers_s=per_layer * depth)
    print(f"Mamba LM, {a.tokens} tokens: naive PyTorch {per_layer:.2f} s per layer, {per_layer * depth:.1f} s for all {depth} layers "
          f"(timed {len(traces)})", flush=True)
    json.dump(result, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
