#!/usr/bin/env python3
"""Golden fixtures for Vision Mamba from the plain-PyTorch reference (vim_torch.py, sequential scan).

  python3 vim_fixtures.py --out DIR

For each config: config.json (our ViM config, model_type "vim"), model.safetensors with the official
key names (random weights, seeded), pixels.npy [2, C, H, W], logits.npy [2, classes], and for layer 0
the forward and backward branch internals of the first image (delta/B/C, backward in its own reversed
token order): trace_0_{fwd,bwd}_{delta,B,C}.npy.
"""
import argparse, json, os
import numpy as np
import torch
from safetensors.torch import save_file
from vim_torch import VisionMamba

CONFIGS = {
    "vim_small": dict(img_size=32, patch_size=8, channels=3, embed_dim=32, depth=2, d_state=8, d_conv=4,
                      expand=2, dt_rank="auto", num_classes=10, use_middle_cls_token=True, if_divide_out=True),
    "vim_gray_cls0": dict(img_size=28, patch_size=7, channels=1, embed_dim=24, depth=3, d_state=4, d_conv=3,
                          expand=2, dt_rank=3, num_classes=7, use_middle_cls_token=False, if_divide_out=False),
}


def internals(mixer, h, b):
    L = h.shape[1]
    x, z = mixer.in_proj(h).chunk(2, dim=-1)
    if b:
        x = x.flip(1)
    u = torch.nn.functional.silu(getattr(mixer, "conv1d" + b)(x.transpose(1, 2))[..., :L]).transpose(1, 2)
    dt, B, C = torch.split(getattr(mixer, "x_proj" + b)(u), [mixer.R, mixer.N, mixer.N], dim=-1)
    delta = torch.nn.functional.softplus(getattr(mixer, "dt_proj" + b)(dt))
    return {"delta": delta[0], "B": B[0], "C": C[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    for k, (name, c) in enumerate(CONFIGS.items()):
        torch.manual_seed(99 + k)
        model = VisionMamba(c).eval()
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n.endswith(("norm.weight", "norm_f.weight", ".D", ".D_b", "bias")):
                    p.add_(0.1 * torch.randn_like(p))
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        save_file({n: p.detach().contiguous() for n, p in model.state_dict().items()}, os.path.join(d, "model.safetensors"))
        json.dump(dict(c, model_type="vim", architectures=["VisionMamba"], rms_norm_eps=1e-5),
                  open(os.path.join(d, "config.json"), "w"), indent=1)
        g = torch.Generator().manual_seed(7 + k)
        pixels = torch.randn(2, c["channels"], c["img_size"], c["img_size"], generator=g)
        seen = {}
        with torch.no_grad():
            logits = model(pixels, hidden_hook=lambda i, r: seen.__setitem__(i, r.clone()))
            layer0 = model.layers[0]
            for b, tag in (("", "fwd"), ("_b", "bwd")):
                for key, t in internals(layer0.mixer, layer0.norm(seen[0]), b).items():
                    np.save(os.path.join(d, f"trace_0_{tag}_{key}.npy"), t.numpy().astype(np.float32))
        np.save(os.path.join(d, "pixels.npy"), pixels.numpy().astype(np.float32))
        np.save(os.path.join(d, "logits.npy"), logits.numpy().astype(np.float32))
        print(name, "logits", tuple(logits.shape), float(logits.abs().max()))


if __name__ == "__main__":
    main()
