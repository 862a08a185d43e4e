#!/usr/bin/env python3
"""Random-weight checkpoints at the real ViM-tiny and DeiT-tiny configs (224, patch 16, D = 192), for
speed measurements only (numpy, no torch):  python3 benchmarks/make_vision_checkpoints.py DIR
writes DIR/vim-tiny-224 and DIR/deit-tiny-224 (config.json + model.safetensors)."""
import json, os, struct, sys
import numpy as np


def write(d, tensors, config):
    os.makedirs(d, exist_ok=True)
    header, blobs, off = {}, [], 0
    for k, a in tensors.items():
        b = np.ascontiguousarray(a, np.float32).tobytes()
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    json.dump(config, open(os.path.join(d, "config.json"), "w"), indent=1)


def main(out):
    r = np.random.default_rng(0)
    n = lambda *s: r.standard_normal(s).astype(np.float32) * 0.02
    D, E, N, R, depth, T = 192, 384, 16, 12, 24, 197
    vim = {"patch_embed.proj.weight": n(D, 3, 16, 16), "patch_embed.proj.bias": n(D), "cls_token": n(1, 1, D),
           "pos_embed": n(1, T, D), "norm_f.weight": np.ones(D), "head.weight": n(1000, D), "head.bias": n(1000)}
    for i in range(depth):
        p = f"layers.{i}."
        vim.update({p + "norm.weight": np.ones(D), p + "mixer.in_proj.weight": n(2 * E, D), p + "mixer.out_proj.weight": n(D, E)})
        for b in ("", "_b"):
            vim.update({p + f"mixer.conv1d{b}.weight": n(E, 1, 4), p + f"mixer.conv1d{b}.bias": n(E),
                        p + f"mixer.x_proj{b}.weight": n(R + 2 * N, E), p + f"mixer.dt_proj{b}.weight": n(E, R),
                        p + f"mixer.dt_proj{b}.bias": np.full(E, -4.0), p + ("mixer.A_log" if not b else "mixer.A_b_log"):
                            np.log(np.tile(np.arange(1, N + 1), (E, 1))), p + f"mixer.D{b}": np.ones(E)})
    write(os.path.join(out, "vim-tiny-224"), vim, dict(model_type="vim", img_size=224, patch_size=16, channels=3, embed_dim=D,
                                                        depth=depth, d_state=N, num_classes=1000))
    F, L = 768, 12
    vit = {"vit.embeddings.cls_token": n(1, 1, D), "vit.embeddings.position_embeddings": n(1, T, D),
           "vit.embeddings.patch_embeddings.projection.weight": n(D, 3, 16, 16), "vit.embeddings.patch_embeddings.projection.bias": n(D),
           "vit.layernorm.weight": np.ones(D), "vit.layernorm.bias": n(D), "classifier.weight": n(1000, D), "classifier.bias": n(1000)}
    for i in range(L):
        p = f"vit.encoder.layer.{i}."
        for k in ("query", "key", "value"):
            vit[p + f"attention.attention.{k}.weight"], vit[p + f"attention.attention.{k}.bias"] = n(D, D), n(D)
        vit.update({p + "attention.output.dense.weight": n(D, D), p + "attention.output.dense.bias": n(D),
                    p + "layernorm_before.weight": np.ones(D), p + "layernorm_before.bias": n(D),
                    p + "layernorm_after.weight": np.ones(D), p + "layernorm_after.bias": n(D),
                    p + "intermediate.dense.weight": n(F, D), p + "intermediate.dense.bias": n(F),
                    p + "output.dense.weight": n(D, F), p + "output.dense.bias": n(D)})
    write(os.path.join(out, "deit-tiny-224"), vit, dict(model_type="vit", image_size=224, patch_size=16, num_channels=3, hidden_size=D,
                                                         num_hidden_layers=L, num_attention_heads=3, intermediate_size=F,
                                                         layer_norm_eps=1e-12, hidden_act="gelu"))


if __name__ == "__main__":
    main(sys.argv[1])
