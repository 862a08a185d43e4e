#!/usr/bin/env python3
"""Golden fixtures for the Mamba-1 language model, made by Hugging Face transformers.

For each configuration below: build `MambaForCausalLM` with random weights (seeded), save it with
`save_pretrained(safe_serialization=True)` (optionally cast to BF16), reload it in float32 and write

  DIR/<name>/config.json, model.safetensors     the checkpoint the Java engine loads
  DIR/<name>/reference.json                      prompt ids, greedy continuation (generate, no sampling)
  DIR/<name>/logits.npy                          float32 [L, vocab], prefill logits of the prompt
  DIR/<name>/trace_<layer>_<name>.npy            float32 [L, E] or [L, N]: delta, B, C, s, u, z of layers
                                                  0 and last, recomputed from the reference's own modules

BF16 checkpoints are evaluated in float32 with the BF16 weights widened, the way the engine runs them.

  python3 mamba_fixtures.py --out DIR            # the small configs committed as test fixtures
  python3 mamba_fixtures.py --out DIR --big      # also the mamba-130m config (too big to commit)
  python3 mamba_fixtures.py --out DIR --big --only mamba130m --f64   # + float64 logits
"""
import argparse, json, math, os
import numpy as np
import torch
from transformers import MambaConfig, MambaForCausalLM

SMALL = {
    "tied_f32": dict(vocab_size=320, hidden_size=64, state_size=8, num_hidden_layers=2, expand=2,
                     conv_kernel=4, time_step_rank="auto", tie_word_embeddings=True),
    "untied_bf16": dict(vocab_size=300, hidden_size=48, state_size=16, num_hidden_layers=3, expand=2,
                        conv_kernel=4, time_step_rank="auto", tie_word_embeddings=False, dtype="bfloat16"),
    "conv3_rank_given": dict(vocab_size=256, hidden_size=32, state_size=4, num_hidden_layers=2, expand=3,
                             conv_kernel=3, time_step_rank=5, tie_word_embeddings=True),
    "bias_untied_f16": dict(vocab_size=260, hidden_size=40, state_size=8, num_hidden_layers=2, expand=2,
                            conv_kernel=4, time_step_rank="auto", use_bias=True, use_conv_bias=True,
                            tie_word_embeddings=False, dtype="float16"),
}
# transformers' default initializer_range (0.1) gives a 768-wide model activations far larger than any
# trained checkpoint's, and logits whose float32 rounding alone exceeds 1e-4 (measured: the reference's
# float32 logits are 2.7e-4 from its float64 ones); 0.02 is the scale of the real mamba-130m weights.
BIG = {"mamba130m": dict(vocab_size=50280, hidden_size=768, state_size=16, num_hidden_layers=24, expand=2,
                         conv_kernel=4, time_step_rank=48, tie_word_embeddings=True, initializer_range=0.02)}


def mixer_internals(mixer, hidden):
    """Δ, B, C, s (conv output before SiLU), u = silu(s), z for one mixer input [1, L, D], using the
    reference module's own layers exactly as its slow path chains them."""
    L = hidden.shape[1]
    proj = mixer.in_proj(hidden).transpose(1, 2)
    x, z = proj.chunk(2, dim=1)
    s = mixer.conv1d(x)[..., :L]
    u = mixer.act(s)
    ssm = mixer.x_proj(u.transpose(1, 2))
    R, N = mixer.time_step_rank, mixer.ssm_state_size
    dt, B, C = torch.split(ssm, [R, N, N], dim=-1)
    delta = torch.nn.functional.softplus(mixer.dt_proj(dt))
    return {"delta": delta[0], "B": B[0], "C": C[0], "s": s[0].T, "u": u[0].T, "z": z[0].T}


def make(name, spec, out, seed, f64=False):
    spec = dict(spec)
    dtype = spec.pop("dtype", "float32")
    torch.manual_seed(seed)
    cfg = MambaConfig(**spec, layer_norm_epsilon=1e-5, residual_in_fp32=True, pad_token_id=0,
                      bos_token_id=0, eos_token_id=0)
    model = MambaForCausalLM(cfg).eval()
    # The default init leaves D = 1 and norms = 1; perturb them so the test sees every weight.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith((".D", "norm.weight", "norm_f.weight", "conv1d.bias", "in_proj.bias", "out_proj.bias")):
                p.add_(0.1 * torch.randn_like(p))
    d = os.path.join(out, name)
    model.to(getattr(torch, dtype)).save_pretrained(d, safe_serialization=True)
    if spec["time_step_rank"] == "auto":     # save_pretrained resolves it; keep the string the user wrote
        cfg_path = os.path.join(d, "config.json")
        written = json.load(open(cfg_path))
        written["time_step_rank"] = "auto"
        json.dump(written, open(cfg_path, "w"), indent=2)
    model = MambaForCausalLM.from_pretrained(d, dtype=torch.float32).eval()

    g = torch.Generator().manual_seed(seed + 1)
    L = 40 if name != "mamba130m" else 64
    ids = torch.randint(0, cfg.vocab_size, (1, L), generator=g)
    captured = {}
    hooks = [layer.mixer.register_forward_hook(
        lambda m, args, kwargs, output, i=i: captured.__setitem__(i, (args[0] if args else kwargs["hidden_states"]).detach()),
        with_kwargs=True) for i, layer in enumerate(model.backbone.layers)]
    with torch.no_grad():
        logits = model(ids, use_cache=False).logits[0].float()
    for h in hooks:
        h.remove()
    np.save(os.path.join(d, "logits.npy"), logits.numpy().astype(np.float32))
    if f64:       # the reference's own float32 rounding, measured against float64
        with torch.no_grad():
            exact = MambaForCausalLM.from_pretrained(d, dtype=torch.float64).eval()(ids, use_cache=False).logits[0]
        np.save(os.path.join(d, "logits_f64.npy"), exact.numpy())
    with torch.no_grad():
        for layer in sorted({0, cfg.num_hidden_layers - 1}):
            for key, t in mixer_internals(model.backbone.layers[layer].mixer, captured[layer]).items():
                np.save(os.path.join(d, f"trace_{layer}_{key}.npy"), t.float().numpy().astype(np.float32))
        prompt = ids[:, :12]
        greedy = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20,
                                do_sample=False, min_new_tokens=20, pad_token_id=0)
    ref = {"config": name, "dtype": dtype, "token_ids": ids[0].tolist(),
           "greedy_prompt": prompt[0].tolist(), "greedy_ids": greedy[0].tolist(),
           "time_step_rank": cfg.time_step_rank, "transformers_version": __import__("transformers").__version__}
    json.dump(ref, open(os.path.join(d, "reference.json"), "w"), indent=1)
    print(name, "logits", tuple(logits.shape), "max |logit|", float(logits.abs().max()), "greedy", ref["greedy_ids"][12:])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--only", help="make just this configuration")
    ap.add_argument("--f64", action="store_true", help="also write logits_f64.npy, the float64 forward")
    a = ap.parse_args()
    configs = dict(SMALL, **(BIG if a.big else {}))
    for k, (name, spec) in enumerate(configs.items()):
        if a.only in (None, name):
            make(name, spec, a.out, seed=1234 + k, f64=a.f64)
