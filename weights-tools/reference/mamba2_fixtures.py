#!/usr/bin/env python3
"""Golden fixtures for Mamba-2 language models, made by transformers' Mamba2ForCausalLM (its torch path).

  python3 mamba2_fixtures.py --out DIR

For each config: random weights (seeded; D, norms, biases and dt_bias perturbed so every weight counts),
saved with save_pretrained (safetensors, in the config's dtype), reloaded in float32, and
  logits.npy            float32 [L, V] for the 40 prompt ids of reference.json (use_cache=False)
  trace_<l>_{dt,B,C,x,y}.npy  layer l's mixer internals for the first and last layers: Δ after softplus and
                        clamping [L, H], B and C [L, G·N], x (the scan input after conv and SiLU) [L, E], and
                        the scan output before the gated norm, y = SSD(x) + D·x [L, E], recomputed here from
                        in_proj's output with a plain sequential recurrence and checked against the mixer's output
  reference.json        token_ids, greedy_prompt (12 ids), greedy_ids (generate with the cache, no sampling)
"""
import argparse, json, os
import numpy as np
import torch
import torch.nn.functional as F
from transformers import Mamba2Config, Mamba2ForCausalLM

CONFIGS = {
    "mamba2_f32": dict(vocab_size=300, hidden_size=64, num_hidden_layers=2, state_size=16, expand=2, head_dim=16,
                       n_groups=1, conv_kernel=4, use_conv_bias=True, use_bias=False, tie_word_embeddings=True,
                       dtype="float32"),
    "mamba2_groups_bf16": dict(vocab_size=300, hidden_size=48, num_hidden_layers=3, state_size=8, expand=2, head_dim=12,
                               n_groups=2, conv_kernel=3, use_conv_bias=True, use_bias=True, tie_word_embeddings=False,
                               time_step_limit=(0.0, 2.0), dtype="bfloat16"),
}


def internals(mixer, hidden):
    """Δ, B, C, x and the pre-norm scan output y of one mixer for hidden [1, L, D], sequentially."""
    E, H, P, G, N = mixer.intermediate_size, mixer.num_heads, mixer.head_dim, mixer.n_groups, mixer.ssm_state_size
    L = hidden.shape[1]
    proj = mixer.in_proj(hidden)[0]
    z, xbc, dt = torch.split(proj, [E, mixer.conv_dim, H], dim=-1)
    xbc = F.silu(mixer.conv1d(xbc.T[None])[0, :, :L].T)
    x, B, C = torch.split(xbc, [E, G * N, G * N], dim=-1)
    dt = torch.clamp(F.softplus(dt + mixer.dt_bias), mixer.time_step_limit[0], mixer.time_step_limit[1])
    A = -torch.exp(mixer.A_log.float())
    state = torch.zeros(H, P, N)
    ys = []
    for t in range(L):
        xt = x[t].view(H, P)
        Bt = B[t].view(G, N).repeat_interleave(H // G, dim=0)              # [H, N]
        Ct = C[t].view(G, N).repeat_interleave(H // G, dim=0)
        state = torch.exp(dt[t] * A)[:, None, None] * state + (dt[t][:, None] * xt)[:, :, None] * Bt[:, None, :]
        ys.append(((state * Ct[:, None, :]).sum(-1) + mixer.D[:, None] * xt).reshape(E))
    y = torch.stack(ys)
    out = mixer.out_proj(mixer.norm(y[None], z[None]))[0]
    return {"dt": dt, "B": B, "C": C, "x": x, "y": y}, out


def make(name, spec, out, seed):
    spec = dict(spec)
    dtype = spec.pop("dtype")
    torch.manual_seed(seed)
    cfg = Mamba2Config(**spec, num_heads=spec["expand"] * spec["hidden_size"] // spec["head_dim"], layer_norm_epsilon=1e-5,
                       residual_in_fp32=True, pad_token_id=0, bos_token_id=0, eos_token_id=0, chunk_size=16)
    model = Mamba2ForCausalLM(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith((".D", "norm.weight", "norm_f.weight", "bias", "dt_bias")):
                p.add_(0.1 * torch.randn_like(p))
    d = os.path.join(out, name)
    model.to(getattr(torch, dtype)).save_pretrained(d, safe_serialization=True)
    model = Mamba2ForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, cfg.vocab_size, (1, 40), generator=g)
    captured = {}
    hooks = [layer.mixer.register_forward_hook(
        lambda m, args, kwargs, output, i=i: captured.__setitem__(i, ((args[0] if args else kwargs["hidden_states"]).detach(), output.detach())),
        with_kwargs=True) for i, layer in enumerate(model.backbone.layers)]
    with torch.no_grad():
        logits = model(ids, use_cache=False).logits[0].float()
    for h in hooks:
        h.remove()
    np.save(os.path.join(d, "logits.npy"), logits.numpy().astype(np.float32))
    with torch.no_grad():
        for layer in sorted({0, cfg.num_hidden_layers - 1}):
            hidden, mixer_out = captured[layer]
            tensors, rebuilt = internals(model.backbone.layers[layer].mixer, hidden)
            err = float((rebuilt - mixer_out[0]).abs().max() / mixer_out.abs().max())
            assert err < 1e-4, f"{name} layer {layer}: the sequential recomputation is {err} from the mixer"
            for key, t in tensors.items():
                np.save(os.path.join(d, f"trace_{layer}_{key}.npy"), t.numpy().astype(np.float32))
        prompt = ids[:, :12]
        greedy = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20, min_new_tokens=20,
                                do_sample=False, pad_token_id=0)
    ref = {"config": name, "dtype": dtype, "token_ids": ids[0].tolist(), "greedy_prompt": prompt[0].tolist(),
           "greedy_ids": greedy[0].tolist(), "transformers_version": __import__("transformers").__version__}
    json.dump(ref, open(os.path.join(d, "reference.json"), "w"), indent=1)
    print(name, "max |logit|", float(logits.abs().max()), "greedy", ref["greedy_ids"][12:])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    for k, (name, spec) in enumerate(CONFIGS.items()):
        make(name, spec, a.out, seed=777 + k)
