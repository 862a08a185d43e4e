#!/usr/bin/env python3
"""Golden fixtures for the text classifiers: GPTNeoXForSequenceClassification (transformers) and our Mamba, Mamba-2,
RWKV and RecurrentGemma ...ForSequenceClassification (sequence_classifiers.py: transformers' backbone + a bias-free
score).

  python3 classifier_fixtures.py --out DIR [--only NAME,NAME]

For each config: random weights (seeded; biases, norms and the recurrences' parameters perturbed so every weight
counts), saved as safetensors in the config's dtype with a config.json carrying architectures, num_labels and
id2label, reloaded in float32, and
  logits.npy       float32 [B, num_labels] for the rows of reference.json's token_ids
  reference.json   token_ids [B, T] (rows right-padded with pad_token_id, one row ending in a pad that
                   is not padding but a token, one row without pads), read_positions [B]
"""
import argparse, json, os
import numpy as np
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import GPTNeoXConfig, GPTNeoXForSequenceClassification

from sequence_classifiers import CLASSIFIERS, last_non_pad

torch.backends.cuda.matmul.allow_tf32 = False

PAD = 1
LABELS = {"mamba_cls_f32": ["negative", "neutral", "positive"],
          "mamba_cls_bf16": ["a", "b", "c", "d"],
          "neox_cls_parallel_f32": ["first", "second", "third"],
          "neox_cls_sequential_bf16": ["w", "x", "y", "z", "other"],
          "mamba2_cls_f32": ["north", "south", "east"],
          "mamba2_cls_bf16": ["one", "two", "three", "four"],
          "rwkv_cls_f32": ["red", "green", "blue"],
          "rwkv_cls_bf16": ["p", "q", "r", "s"],
          "griffin_cls_f32": ["cold", "warm", "hot"],
          "griffin_cls_bf16": ["i", "ii", "iii", "iv", "v"]}


def perturb(model):
    """Noise on the weights initialised to constants: biases, norms, D, RWKV's layer norms and time mixes, the RG-LRU's Λ."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("bias") or "norm" in n or n.endswith(".D") or ".ln" in n or "time_" in n or "recurrent_param" in n:
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


def ours(name, architecture, config_class, dtype, out, seed, **spec):
    """One of our classifiers (sequence_classifiers.py), its config a transformers `config_class`."""
    torch.manual_seed(seed)
    cfg = getattr(transformers, config_class)(vocab_size=300, **spec, **label_config(name))
    cfg.architectures = [architecture]
    model = CLASSIFIERS[architecture](cfg).eval()
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


def fixtures(out):
    """name -> a function writing that fixture into out."""
    return {
        "mamba_cls_f32": lambda: ours("mamba_cls_f32", "MambaForSequenceClassification", "MambaConfig", "float32", out, 9001,
                                      hidden_size=64, state_size=8, num_hidden_layers=2, expand=2, conv_kernel=4,
                                      time_step_rank="auto", use_bias=False, use_conv_bias=True),
        "mamba_cls_bf16": lambda: ours("mamba_cls_bf16", "MambaForSequenceClassification", "MambaConfig", "bfloat16", out, 9002,
                                       hidden_size=48, state_size=4, num_hidden_layers=3, expand=2, conv_kernel=3,
                                       time_step_rank=5, use_bias=True, use_conv_bias=False),
        "neox_cls_parallel_f32": lambda: neox("neox_cls_parallel_f32", "float32", out, 9003, hidden_size=64, num_hidden_layers=2,
                                              num_attention_heads=4, intermediate_size=160, rotary_pct=0.25, use_parallel_residual=True),
        "neox_cls_sequential_bf16": lambda: neox("neox_cls_sequential_bf16", "bfloat16", out, 9004, hidden_size=48, num_hidden_layers=3,
                                                 num_attention_heads=3, intermediate_size=96, rotary_pct=0.5, use_parallel_residual=False,
                                                 attention_bias=False),
        "mamba2_cls_f32": lambda: ours("mamba2_cls_f32", "Mamba2ForSequenceClassification", "Mamba2Config", "float32", out, 9005,
                                       hidden_size=64, num_hidden_layers=2, state_size=16, expand=2, head_dim=16, num_heads=8,
                                       n_groups=1, conv_kernel=4, chunk_size=16, use_bias=False, use_conv_bias=True),
        "mamba2_cls_bf16": lambda: ours("mamba2_cls_bf16", "Mamba2ForSequenceClassification", "Mamba2Config", "bfloat16", out, 9006,
                                        hidden_size=48, num_hidden_layers=3, state_size=8, expand=2, head_dim=12, num_heads=8,
                                        n_groups=2, conv_kernel=3, chunk_size=16, use_bias=True, use_conv_bias=True,
                                        time_step_limit=(0.0, 2.0)),
        "rwkv_cls_f32": lambda: ours("rwkv_cls_f32", "RwkvForSequenceClassification", "RwkvConfig", "float32", out, 9007,
                                     hidden_size=64, num_hidden_layers=2, attention_hidden_size=64, intermediate_size=160,
                                     context_length=128, rescale_every=0),
        "rwkv_cls_bf16": lambda: ours("rwkv_cls_bf16", "RwkvForSequenceClassification", "RwkvConfig", "bfloat16", out, 9008,
                                      hidden_size=48, num_hidden_layers=3, attention_hidden_size=48, intermediate_size=96,
                                      context_length=128, rescale_every=0, layer_norm_epsilon=1e-6),
        "griffin_cls_f32": lambda: ours("griffin_cls_f32", "RecurrentGemmaForSequenceClassification", "RecurrentGemmaConfig", "float32",
                                        out, 9009, hidden_size=64, intermediate_size=192, num_hidden_layers=3, num_attention_heads=4,
                                        num_key_value_heads=1, lru_width=64, conv1d_width=4, w_init_variance_scale=0.5),
        "griffin_cls_bf16": lambda: ours("griffin_cls_bf16", "RecurrentGemmaForSequenceClassification", "RecurrentGemmaConfig", "bfloat16",
                                         out, 9010, hidden_size=48, intermediate_size=160, num_hidden_layers=4, num_attention_heads=4,
                                         num_key_value_heads=2, lru_width=96, conv1d_width=4, w_init_variance_scale=0.5,
                                         block_types=["recurrent", "attention"]),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", help="comma-separated fixture names (default: all)")
    a = ap.parse_args()
    made = fixtures(a.out)
    for name in a.only.split(",") if a.only else made:
        made[name]()
