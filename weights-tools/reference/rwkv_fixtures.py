#!/usr/bin/env python3
"""Golden fixtures for RWKV-4 language models, made by transformers' RwkvForCausalLM (its CPU recurrence).

  python3 rwkv_fixtures.py --out DIR

For each config: random weights (seeded; norms, time mixes, decays and bonuses perturbed so every weight
counts), saved with save_pretrained before any forward pass (transformers rescales weights in place at its
first eval forward), reloaded in float32, and
  logits.npy       float32 [L, V] for the 40 prompt ids of reference.json (use_cache=False)
  wkv_<l>.npy      float32 [L, A]: layer l's WKV output before the receptance gate, for the first and last
                   layers, recomputed here from the layer's own modules and checked against its output
  reference.json   token_ids, greedy_prompt (12 ids), greedy_ids (generate with the recurrent state, no sampling)
"""
import argparse, json, os
import numpy as np
import torch
from transformers import RwkvConfig, RwkvForCausalLM

CONFIGS = {
    "rwkv_f32": dict(vocab_size=300, hidden_size=64, num_hidden_layers=2, attention_hidden_size=64,
                     intermediate_size=160, dtype="float32"),
    "rwkv_bf16": dict(vocab_size=300, hidden_size=48, num_hidden_layers=3, attention_hidden_size=48,
                           intermediate_size=96, layer_norm_epsilon=1e-6, dtype="bfloat16"),
}


def wkv(att, x):
    """The layer's WKV [L, A] before σ(r), for its input x [L, D] (after ln1), by the direct sum over the past."""
    shifted = torch.cat([torch.zeros_like(x[:1]), x[:-1]])
    k = att.key(x * att.time_mix_key[0, 0] + shifted * (1 - att.time_mix_key[0, 0])).double()
    v = att.value(x * att.time_mix_value[0, 0] + shifted * (1 - att.time_mix_value[0, 0])).double()
    w, u = -torch.exp(att.time_decay.double()), att.time_first.double()
    L = x.shape[0]
    out = torch.zeros(L, k.shape[1], dtype=torch.float64)
    for t in range(L):
        weights = [torch.exp((t - 1 - i) * w + k[i]) for i in range(t)] + [torch.exp(u + k[t])]
        W = torch.stack(weights)                                   # [t+1, A]
        out[t] = (W * v[:t + 1]).sum(0) / W.sum(0)
    r = torch.sigmoid(att.receptance(x * att.time_mix_receptance[0, 0] + shifted * (1 - att.time_mix_receptance[0, 0])))
    return out, att.output((r.double() * out).float())


def make(name, spec, out, seed):
    spec = dict(spec)
    dtype = spec.pop("dtype")
    torch.manual_seed(seed)
    cfg = RwkvConfig(**spec, context_length=128, rescale_every=6, bos_token_id=0, eos_token_id=0, tie_word_embeddings=False)
    model = RwkvForCausalLM(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "ln" in n or "time_" in n:
                p.add_(0.1 * torch.randn_like(p))
    d = os.path.join(out, name)
    model.to(getattr(torch, dtype)).save_pretrained(d, safe_serialization=True)
    model = RwkvForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, cfg.vocab_size, (1, 40), generator=g)
    captured = {}
    hooks = [b.attention.register_forward_hook(
        lambda m, args, kwargs, output, i=i: captured.__setitem__(i, ((args[0] if args else kwargs["hidden"]).detach(), output[0].detach())),
        with_kwargs=True) for i, b in enumerate(model.rwkv.blocks)]
    with torch.no_grad():
        logits = model(ids, use_cache=False).logits[0].float()
        for h in hooks:
            h.remove()
        np.save(os.path.join(d, "logits.npy"), logits.numpy().astype(np.float32))
        for layer in sorted({0, cfg.num_hidden_layers - 1}):
            x, att_out = captured[layer]
            w, rebuilt = wkv(model.rwkv.blocks[layer].attention, x[0])
            err = float((rebuilt - att_out[0]).abs().max() / att_out.abs().max())
            assert err < 1e-4, f"{name} layer {layer}: the direct WKV sum is {err} from the attention output"
            np.save(os.path.join(d, f"wkv_{layer}.npy"), w.numpy().astype(np.float32))
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
        make(name, spec, a.out, seed=555 + k)
