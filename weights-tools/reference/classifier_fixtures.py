#!/usr/bin/env python3
"""Golden fixtures for the text classifiers: GPTNeoXForSequenceClassification (transformers) and
MambaForSequenceClassification (mamba_classifier.py: transformers' MambaModel + a bias-free score).

  python3 classifier_fixtures.py --out DIR

For each config: random weights (seeded; biases and norms perturbed so every weight counts), saved as
safetensors in the config's dtype with a config.json carrying architectures, num_labels and id2label,
reloaded in float32, and
  logits.npy       float32 [B, num_labels] for the rows of reference.json's token_ids
  reference.json   token_ids [B, T] (rows right-padded with pad_token_id, one row ending in a pad that
                   is not padding but a token, one row without pads), read_positions [B]
"""
import argparse, json, os
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import GPTNeoXConfig, GPTNeoXForSequenceClassification, MambaConfig

from mamba_classifier import MambaForSequenceClassification, last_non_pad

torch.backends.cuda.matmul.allow_tf32 = False

PAD = 1
LABELS = {"mamba_cls_f32": ["negative", "neutral", "positive"],
          "mamba_cls_bf16": ["a", "b", "c", "d"],
          "neox_cls_parallel_f32": ["first", "second", "third"],
          "neox_cls_sequential_bf16": ["w", "x", "y", "z", "other"]}


def perturb(model):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("bias") or "norm" in n or n.endswith(".D"):
                p.add_(0.1 * torch.randn_like(p))


def label_config(name):
    labels = LABELS[name]
    return dict(num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
                pad_token_id=PAD, bos_token_id=0, eos_token_id=0)


def inputs(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (4, 30), generator=g)
    ids[1, 17:] = PAD                          # padded: read at 16
    ids[2, 5:] = PAD                           # padded: read at 4
    ids[3, 10] = PAD                           # a pad inside the text is skipped only when it is trailing
    return ids


def mamba(name, dtype, out, seed, **spec):
    torch.manual_seed(seed)
    cfg = MambaConfig(vocab_size=300, **spec, **label_config(name))
    cfg.architectures = ["MambaForSequenceClassification"]
    model = MambaForSequenceClassification(cfg).eval()
    perturb(model)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    save_file({k: v.to(getattr(torch, dtype)).contiguous() for k, v in model.state_dict().items()},
              os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    cfg.save_pretrained(d)
    model.load_state_dict({k: v.float() for k, v in load_file(os.path.join(d, "model.safetensors")).items()})
    write(d, name, dtype, model, inputs(cfg.vocab_size, seed + 1), lambda m, ids: m(ids))


def neox(name, dtype, out, seed, **spec):
    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(vocab_size=300, max_position_embeddings=64, tie_word_embeddings=False, **spec, **label_config(name))
    model = GPTNeoXForSequenceClassification(cfg).eval()
    perturb(model)
    d = os.path.join(out, name)
    model.to(getattr(torch, dtype)).save_pretrained(d, safe_serialization=True)
    model = GPTNeoXForSequenceClassification.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    write(d, name, dtype, model, inputs(cfg.vocab_size, seed + 1), lambda m, ids: m(input_ids=ids).logits)


def write(d, name, dtype, model, ids, run):
    with torch.no_grad():
        logits = run(model, ids)
    np.save(os.path.join(d, "logits.npy"), logits.numpy().astype(np.float32))
    ref = {"config": name, "dtype": dtype, "token_ids": ids.tolist(), "read_positions": last_non_pad(ids, PAD).tolist(),
           "transformers_version": __import__("transformers").__version__}
    json.dump(ref, open(os.path.join(d, "reference.json"), "w"), indent=1)
    print(name, "logits", logits.tolist())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    mamba("mamba_cls_f32", "float32", a.out, 9001, hidden_size=64, state_size=8, num_hidden_layers=2, expand=2,
          conv_kernel=4, time_step_rank="auto", use_bias=False, use_conv_bias=True)
    mamba("mamba_cls_bf16", "bfloat16", a.out, 9002, hidden_size=48, state_size=4, num_hidden_layers=3, expand=2,
          conv_kernel=3, time_step_rank=5, use_bias=True, use_conv_bias=False)
    neox("neox_cls_parallel_f32", "float32", a.out, 9003, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
         intermediate_size=160, rotary_pct=0.25, use_parallel_residual=True)
    neox("neox_cls_sequential_bf16", "bfloat16", a.out, 9004, hidden_size=48, num_hidden_layers=3, num_attention_heads=3,
         intermediate_size=96, rotary_pct=0.5, use_parallel_residual=False, attention_bias=False)
