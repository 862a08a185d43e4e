#!/usr/bin/env python3
"""Golden fixtures for ViT/DeiT image classifiers, made by transformers' ViTForImageClassification.

  python3 vit_fixtures.py --out DIR           # the small configs committed as test fixtures
  python3 vit_fixtures.py --out DIR --big     # also DeiT-tiny's config (224/16, 192 wide, 12 layers, 3 heads)

For each config: random weights (seeded), saved with save_pretrained (safetensors), and
  pixels.npy        float32 [2, C, H, W], already preprocessed input
  logits.npy        float32 [2, classes]
  attn_<l>.npy      float32 [heads, T, T], softmax probabilities of the first image at layers 0 and last
"""
import argparse, json, os
import numpy as np
import torch
from transformers import ViTConfig, ViTForImageClassification

SMALL = {
    "vit_small": dict(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, num_labels=10, num_channels=3),
    "vit_gray_odd": dict(image_size=28, patch_size=7, hidden_size=48, num_hidden_layers=3, num_attention_heads=3,
                         intermediate_size=96, num_labels=7, num_channels=1, layer_norm_eps=1e-6, qkv_bias=False),
}
BIG = {"deit_tiny": dict(image_size=224, patch_size=16, hidden_size=192, num_hidden_layers=12, num_attention_heads=3,
                         intermediate_size=768, num_labels=1000, num_channels=3, initializer_range=0.02)}


def make(name, spec, out, seed):
    torch.manual_seed(seed)
    cfg = ViTConfig(**spec)
    model = ViTForImageClassification(cfg).eval()
    with torch.no_grad():   # the default init zeroes biases and sets norms to 1: perturb so every weight counts
        for n, p in model.named_parameters():
            if n.endswith("bias") or "layernorm" in n or "cls_token" in n or "position" in n:
                p.add_(0.1 * torch.randn_like(p))
    d = os.path.join(out, name)
    model.save_pretrained(d, safe_serialization=True)
    model = ViTForImageClassification.from_pretrained(d, attn_implementation="eager").eval()
    g = torch.Generator().manual_seed(seed + 1)
    pixels = torch.randn(2, cfg.num_channels, cfg.image_size, cfg.image_size, generator=g)
    with torch.no_grad():
        o = model(pixel_values=pixels, output_attentions=True)
    np.save(os.path.join(d, "pixels.npy"), pixels.numpy().astype(np.float32))
    np.save(os.path.join(d, "logits.npy"), o.logits.numpy().astype(np.float32))
    for layer in sorted({0, cfg.num_hidden_layers - 1}):
        np.save(os.path.join(d, f"attn_{layer}.npy"), o.attentions[layer][0].numpy().astype(np.float32))
    json.dump({"config": name, "predicted": o.logits.argmax(-1).tolist(),
               "transformers_version": __import__("transformers").__version__},
              open(os.path.join(d, "reference.json"), "w"), indent=1)
    print(name, "logits", tuple(o.logits.shape), "max |logit|", float(o.logits.abs().max()))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--big", action="store_true")
    a = ap.parse_args()
    for k, (name, spec) in enumerate(dict(SMALL, **(BIG if a.big else {})).items()):
        make(name, spec, a.out, 4321 + k)
