#!/usr/bin/env python3
"""Golden fixtures for GPT-NeoX / Pythia language models, made by transformers' GPTNeoXForCausalLM.

  python3 gptneox_fixtures.py --out DIR

For each config: random weights (seeded; biases and norms perturbed so every weight counts), saved with
save_pretrained (safetensors, in the config's dtype), reloaded in float32, and
  logits.npy        float32 [L, V] for the 40 prompt ids of reference.json (use_cache=False)
  attn_<l>.npy      float32 [H, L, L], softmax probabilities of layers 0 and last (eager attention)
  reference.json    token_ids, greedy_prompt (12 ids) and greedy_ids (generate, KV cache, no sampling)
"""
import argparse, json, os
import numpy as np
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

torch.backends.cuda.matmul.allow_tf32 = False

CONFIGS = {
    # Pythia-style: parallel residual, rotary on a quarter of each head, biases, untied head
    "neox_parallel_f32": dict(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=160, rotary_pct=0.25, use_parallel_residual=True, dtype="float32"),
    # sequential residual, half-rotary heads of 16, no attention bias, BF16 weights
    "neox_sequential_bf16": dict(vocab_size=300, hidden_size=48, num_hidden_layers=3, num_attention_heads=3,
                                 intermediate_size=96, rotary_pct=0.5, use_parallel_residual=False, attention_bias=False,
                                 rotary_emb_base=500, layer_norm_eps=1e-6, dtype="bfloat16"),
}


def make(name, spec, out, seed):
    spec = dict(spec)
    dtype = spec.pop("dtype")
    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(**spec, max_position_embeddings=128, bos_token_id=0, eos_token_id=0, tie_word_embeddings=False)
    model = GPTNeoXForCausalLM(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("bias") or "layernorm" in n or "layer_norm" in n:
                p.add_(0.1 * torch.randn_like(p))
    d = os.path.join(out, name)
    model.to(getattr(torch, dtype)).save_pretrained(d, safe_serialization=True)
    model = GPTNeoXForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, cfg.vocab_size, (1, 40), generator=g)
    with torch.no_grad():
        result = model(ids, use_cache=False, output_attentions=True)
        np.save(os.path.join(d, "logits.npy"), result.logits[0].numpy().astype(np.float32))
        for layer in sorted({0, cfg.num_hidden_layers - 1}):
            np.save(os.path.join(d, f"attn_{layer}.npy"), result.attentions[layer][0].numpy().astype(np.float32))
        prompt = ids[:, :12]
        greedy = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20, min_new_tokens=20,
                                do_sample=False, pad_token_id=0)
    ref = {"config": name, "dtype": dtype, "token_ids": ids[0].tolist(), "greedy_prompt": prompt[0].tolist(),
           "greedy_ids": greedy[0].tolist(), "transformers_version": __import__("transformers").__version__}
    json.dump(ref, open(os.path.join(d, "reference.json"), "w"), indent=1)
    print(name, "max |logit|", float(result.logits.abs().max()), "greedy", ref["greedy_ids"][12:])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    for k, (name, spec) in enumerate(CONFIGS.items()):
        make(name, spec, a.out, seed=4321 + k)
