#!/usr/bin/env python3
"""Golden fixtures for Griffin / RecurrentGemma language models, made by transformers' RecurrentGemmaForCausalLM.

  python3 recurrent_gemma_fixtures.py --out DIR

For each config: random weights (seeded; norms, gate biases and the recurrence parameter perturbed so every
weight counts), saved with save_pretrained, reloaded in float32, and
  logits.npy       float32 [L, V] for the 40 prompt ids of reference.json (use_cache=False)
  lru_<l>.npy      float32 [L, W]: recurrent layer l's RG-LRU output, for the first and last recurrent layers
  attn_<l>.npy     float32 [H, L, L]: the first local-attention layer's softmax probabilities, recomputed here
                   from the layer's own modules and checked against its output
  reference.json   token_ids, greedy_prompt (12 ids), greedy_ids (20 greedy steps), window

The sliding window: each token sees itself and the W−1 tokens before it (transformers' sliding-window mask,
config "attention_window_size"). Config "griffin_f32" has a window (16) shorter than the prompt and the greedy
run, so the window is tested in prefill and in decoding; "griffin_bf16" has a window (64) longer than both.
The attention probabilities come from transformers' eager attention (attn_implementation="eager") and are
checked against a recomputation from the layer's own modules; the greedy ids from generate() (the recurrent
state and the key/value cache) are checked against one full forward pass per step.
"""
import argparse, json, os
import numpy as np
import torch
from transformers import RecurrentGemmaConfig, RecurrentGemmaForCausalLM

CONFIGS = {
    "griffin_f32": dict(vocab_size=300, hidden_size=64, intermediate_size=192, num_hidden_layers=3, num_attention_heads=4,
                        num_key_value_heads=1, lru_width=64, attention_window_size=16, dtype="float32"),
    "griffin_bf16": dict(vocab_size=300, hidden_size=48, intermediate_size=160, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=2, lru_width=96, attention_window_size=64, logits_soft_cap=8.0, dtype="bfloat16",
                         block_types=["recurrent", "attention"]),
}


def attention_probs(att, x, window):
    """Softmax probabilities [H, L, L] of a local-attention layer for its input x [1, L, D], and its output."""
    L = x.shape[1]
    H, kv, dh = att.num_attention_heads, att.num_key_value_heads, att.head_dim
    q = att.q_proj(x).view(1, L, H, dh).transpose(1, 2)
    k = att.k_proj(x).view(1, L, kv, dh).transpose(1, 2)
    v = att.v_proj(x).view(1, L, kv, dh).transpose(1, 2)
    cos, sin = att.rotary_emb(v, torch.arange(L)[None])
    from transformers.models.recurrent_gemma.modeling_recurrent_gemma import apply_rotary_pos_emb, repeat_kv
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    k, v = repeat_kv(k, H // kv), repeat_kv(v, H // kv)
    scores = (q @ k.transpose(-1, -2)).double() * dh ** -0.5
    i, j = torch.arange(L)[:, None], torch.arange(L)[None, :]
    scores = scores.masked_fill(~((j <= i) & (j > i - window)), float("-inf"))
    probs = torch.softmax(scores, -1)
    out = att.o_proj((probs.float() @ v).transpose(1, 2).reshape(1, L, H * dh))
    return probs[0], out


def make(name, spec, out, seed):
    spec = dict(spec)
    dtype = spec.pop("dtype")
    torch.manual_seed(seed)
    cfg = RecurrentGemmaConfig(**spec, conv1d_width=4, w_init_variance_scale=0.5, pad_token_id=0, bos_token_id=2, eos_token_id=1, tie_word_embeddings=True)
    model = RecurrentGemmaForCausalLM(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n or "bias" in n or "recurrent_param" in n or "conv_1d" in n:
                p.add_(0.1 * torch.randn_like(p))
    d = os.path.join(out, name)
    model.to(getattr(torch, dtype)).save_pretrained(d, safe_serialization=True)
    model = RecurrentGemmaForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    window = cfg.attention_window_size
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(3, cfg.vocab_size, (1, 40), generator=g)
    kinds = cfg.layers_block_type
    with torch.no_grad():
        captured = {}
        hooks = []
        for i, layer in enumerate(model.model.layers):
            if kinds[i] == "recurrent":
                hooks.append(layer.temporal_block.rg_lru.register_forward_hook(
                    lambda m, args, output, i=i: captured.__setitem__(i, output.detach())))
            else:
                hooks.append(layer.temporal_block.register_forward_hook(
                    lambda m, args, kwargs, output, i=i: captured.__setitem__(i, (args[0].detach(), output[0].detach(), output[1].detach())),
                    with_kwargs=True))
        logits = model(ids, use_cache=False).logits[0].float()
        for h in hooks:
            h.remove()
        np.save(os.path.join(d, "logits.npy"), logits.numpy().astype(np.float32))
        recurrent = [i for i, k in enumerate(kinds) if k == "recurrent"]
        for layer in sorted({recurrent[0], recurrent[-1]}):
            np.save(os.path.join(d, f"lru_{layer}.npy"), captured[layer][0].numpy().astype(np.float32))
        first_attention = kinds.index("attention")
        x, att_out, weights = captured[first_attention]
        probs, rebuilt = attention_probs(model.model.layers[first_attention].temporal_block, x, window)
        err = float((rebuilt - att_out).abs().max() / att_out.abs().max())
        assert err < 1e-4, f"{name} layer {first_attention}: the recomputed attention is {err} from the layer output"
        err = float((probs - weights[0].double()).abs().max())
        assert err < 1e-5, f"{name} layer {first_attention}: the recomputed probabilities are {err} from transformers'"
        np.save(os.path.join(d, f"attn_{first_attention}.npy"), weights[0].numpy().astype(np.float32))
        prompt = ids[:, :12]
        greedy = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20, min_new_tokens=20,
                                do_sample=False, pad_token_id=0)
        stepped = prompt.clone()
        for _ in range(20):
            last = model(stepped, use_cache=False).logits[0, -1]
            last[cfg.eos_token_id] = float("-inf")                         # as min_new_tokens does
            nxt = last.argmax()
            stepped = torch.cat([stepped, nxt.view(1, 1)], 1)
        assert stepped[0].tolist() == greedy[0].tolist(), f"{name}: generate() differs from one full forward per step"
    ref = {"config": name, "dtype": dtype, "window": window, "normalizer": float(model.model.normalizer), "token_ids": ids[0].tolist(), "greedy_prompt": prompt[0].tolist(),
           "greedy_ids": greedy[0].tolist(), "transformers_version": __import__("transformers").__version__}
    json.dump(ref, open(os.path.join(d, "reference.json"), "w"), indent=1)
    print(name, "layers", kinds, "max |logit|", float(logits.abs().max()), "greedy", ref["greedy_ids"][12:])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    for k, (name, spec) in enumerate(CONFIGS.items()):
        make(name, spec, a.out, seed=777 + k)
