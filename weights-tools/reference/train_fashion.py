#!/usr/bin/env python3
"""Trains the bundled demo image classifiers on Fashion-MNIST (Debian's dataset-fashion-mnist):
a small Vision Mamba (vim_torch.py, official key names) and a small DeiT-style ViT
(transformers' ViTForImageClassification), both on 28x28 grayscale, patch 4.

  python3 train_fashion.py --data DIR_WITH_IDX_GZ --out OUT [--seconds 150]

Writes OUT/vim-fashion and OUT/vit-fashion, each with config.json, model.safetensors,
preprocessor_config.json (rescale 1/255, normalise with the training set's mean/std, no resize),
training.json (test accuracy from PyTorch), and reference/{pixels,logits}.npy: the first 16 test
images preprocessed and the reference logits (ViM with the sequential scan).
"""
import argparse, gzip, json, math, os, time
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import ViTConfig, ViTForImageClassification
from vim_torch import VisionMamba

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MEAN, STD = 0.2860, 0.3530


def idx(path):
    raw = gzip.open(path).read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def preprocess(images):
    return ((images.astype(np.float32) / 255.0 - MEAN) / STD)[:, None]


def train(model, forward, x, y, xt, yt, seconds, lr, dev, batch=256):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    t0, step = time.time(), 0
    model.train()
    while time.time() - t0 < seconds:
        frac = (time.time() - t0) / seconds
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, step / 200) * 0.5 * (1 + math.cos(math.pi * frac))
        i = torch.randint(0, x.shape[0], (batch,), device=dev)
        xb = x[i]
        if torch.rand(1).item() < 0.5:
            xb = xb.flip(-1)                       # horizontal flip
        loss = F.cross_entropy(forward(xb), y[i], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 500 == 0:
            print(f"  step {step} {time.time() - t0:.0f}s loss {loss.item():.3f}", flush=True)
    model.eval()
    with torch.no_grad():
        correct = sum((forward(xt[j:j + 1000]).argmax(-1) == yt[j:j + 1000]).sum().item() for j in range(0, xt.shape[0], 1000))
    return step, correct / xt.shape[0]


def preprocessor(out):
    json.dump({"do_resize": False, "size": {"height": 28, "width": 28}, "do_rescale": True, "rescale_factor": 1 / 255,
               "do_normalize": True, "image_mean": [MEAN], "image_std": [STD], "num_channels": 1,
               "note": "Fashion-MNIST training-set mean and std"}, open(os.path.join(out, "preprocessor_config.json"), "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=150)
    a = ap.parse_args()
    dev = "cuda"
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    x = torch.tensor(preprocess(idx(os.path.join(a.data, "train-images-idx3-ubyte.gz"))), device=dev)
    y = torch.tensor(idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz")).astype(np.int64), device=dev)
    xt = torch.tensor(preprocess(idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz"))), device=dev)
    yt = torch.tensor(idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64), device=dev)

    # Vision Mamba
    vc = dict(img_size=28, patch_size=4, stride=4, channels=1, embed_dim=64, depth=6, d_state=16, d_conv=4, expand=2,
              dt_rank="auto", num_classes=10, use_middle_cls_token=True, if_divide_out=True, rms_norm_eps=1e-5)
    vim = VisionMamba(vc).to(dev)
    print("ViM parameters", sum(p.numel() for p in vim.parameters()), flush=True)
    steps, acc = train(vim, lambda b: vim(b, parallel=True), x, y, xt, yt, a.seconds, 2e-3, dev)
    print(f"ViM: {steps} steps, test accuracy {acc:.4f}", flush=True)
    d = os.path.join(a.out, "vim-fashion")
    os.makedirs(os.path.join(d, "reference"), exist_ok=True)
    vim = vim.cpu().eval()
    save_file({k: v.detach().contiguous() for k, v in vim.state_dict().items()}, os.path.join(d, "model.safetensors"))
    json.dump(dict(vc, model_type="vim", architectures=["VisionMamba"], id2label={str(i): l for i, l in enumerate(LABELS)}),
              open(os.path.join(d, "config.json"), "w"), indent=1)
    preprocessor(d)
    sample = xt[:16].cpu()
    with torch.no_grad():
        ref = vim(sample, parallel=False)
    np.save(os.path.join(d, "reference", "pixels.npy"), sample.numpy())
    np.save(os.path.join(d, "reference", "logits.npy"), ref.numpy())
    json.dump({"data": "Debian dataset-fashion-mnist, 60k train / 10k test", "preprocessing": "x/255, (x-0.2860)/0.3530",
               "augmentation": "random horizontal flip", "steps": steps, "batch": 256, "seconds": a.seconds,
               "test_accuracy_pytorch": acc, "parameters": sum(p.numel() for p in vim.parameters())},
              open(os.path.join(d, "training.json"), "w"), indent=1)

    # DeiT-style ViT
    cfg = ViTConfig(image_size=28, patch_size=4, num_channels=1, hidden_size=64, num_hidden_layers=6, num_attention_heads=4,
                    intermediate_size=128, num_labels=10, id2label={i: l for i, l in enumerate(LABELS)},
                    label2id={l: i for i, l in enumerate(LABELS)}, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    vit = ViTForImageClassification(cfg).to(dev)
    print("ViT parameters", sum(p.numel() for p in vit.parameters()), flush=True)
    steps, acc = train(vit, lambda b: vit(pixel_values=b).logits, x, y, xt, yt, a.seconds, 2e-3, dev)
    print(f"ViT: {steps} steps, test accuracy {acc:.4f}", flush=True)
    d = os.path.join(a.out, "vit-fashion")
    vit = vit.cpu().eval()
    torch.backends.cuda.matmul.allow_tf32 = False
    vit.save_pretrained(d, safe_serialization=True)
    preprocessor(d)
    os.makedirs(os.path.join(d, "reference"), exist_ok=True)
    with torch.no_grad():
        ref = vit(pixel_values=sample).logits
    np.save(os.path.join(d, "reference", "pixels.npy"), sample.numpy())
    np.save(os.path.join(d, "reference", "logits.npy"), ref.numpy())
    json.dump({"data": "Debian dataset-fashion-mnist, 60k train / 10k test", "preprocessing": "x/255, (x-0.2860)/0.3530",
               "augmentation": "random horizontal flip", "steps": steps, "batch": 256, "seconds": a.seconds,
               "test_accuracy_pytorch": acc, "parameters": sum(p.numel() for p in vit.parameters())},
              open(os.path.join(d, "training.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
