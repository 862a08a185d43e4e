#!/usr/bin/env python3
"""Trains the bundled image classifiers on placed Fashion-MNIST (fashion_placed.py: 64x64 canvases,
objects at random places and sizes, clutter): a Vision Mamba (vim_torch.py, middle cls token, official
key names) and a DeiT-style ViT (transformers' ViTForImageClassification) of about the same size,
both with 8x8 patches (an 8x8 grid, 64 tokens and the cls token).

  python3 train_fashion_placed.py --fashion DIR_WITH_IDX_GZ --repo REPO --out OUT [--vim-seconds 200] [--vit-seconds 110]

Training data: the fixed train split (seed 0) and --variants more renderings of the same 60,000 images
with fresh draws (seeds 100, 101, ...), plus random horizontal flips; the test split is the committed one
(REPO/data/fashion-placed/test-placements.csv.gz, checked here image by image).

Writes OUT/models/{vim,vit}-placed (config.json, model.safetensors in F32, preprocessor_config.json,
training.json with the test accuracy from PyTorch in float32) and OUT/golden/trained/{vim,vit}-placed/
{pixels,logits}.npy: the first 8 test images preprocessed, and their logits (ViM: the sequential scan).
"""
import argparse, gzip, json, os, time
from concurrent.futures import ProcessPoolExecutor
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import fashion_placed as fp
from train_fashion import train
from vim_torch import VisionMamba

GOLDEN_IMAGES = 8
AUGMENTATION_SEED = 100


def train_canvases(fashion, variants):
    """The fixed train split and `variants` fresh renderings of it, rendered in parallel: uint8 [M, 64, 64], labels [M]."""
    seeds = [fp.TRAIN_SEED] + [AUGMENTATION_SEED + k for k in range(variants)]
    with ProcessPoolExecutor(len(seeds)) as pool:
        parts = list(pool.map(render_train, [fashion] * len(seeds), seeds))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def render_train(fashion, seed):
    canvas, _, labels, _ = fp.split(fashion, "train", seed)
    return canvas, labels


def check_against_committed(repo, canvas, mask, labels):
    """The test split rendered here must be the committed one: same labels, pixel sums and mask sizes."""
    with gzip.open(os.path.join(repo, "data/fashion-placed/test-placements.csv.gz"), "rt") as f:
        header = f.readline().strip().split(",")
        rows = np.array([[int(v) for v in line.split(",")] for line in f], np.int64)
    col = {name: k for k, name in enumerate(header)}
    assert rows.shape[0] == canvas.shape[0], rows.shape
    assert (rows[:, col["label"]] == labels).all()
    assert (rows[:, col["pixel_sum"]] == canvas.reshape(len(rows), -1).sum(1, dtype=np.int64)).all()
    assert (rows[:, col["mask_pixels"]] == mask.reshape(len(rows), -1).sum(1)).all()


def normalised(canvas, mean, std, dev):
    """uint8 [N, 64, 64] -> float32 [N, 1, 64, 64] on dev, (x/255 - mean)/std as the preprocessor says."""
    x = torch.from_numpy(canvas).to(dev)
    return ((x.float() / 255.0 - mean) / std).unsqueeze(1)


def preprocessor(out, mean, std):
    json.dump({"do_resize": False, "size": {"height": fp.CANVAS, "width": fp.CANVAS}, "do_rescale": True, "rescale_factor": 1 / 255,
               "do_normalize": True, "image_mean": [mean], "image_std": [std], "num_channels": 1,
               "note": "placed Fashion-MNIST (data/fashion-placed) training-split mean and std"},
              open(os.path.join(out, "preprocessor_config.json"), "w"), indent=1)


def fastest_scan(vim, x, y):
    """Whether the parallel (Hillis-Steele) scan trains faster than the sequential loop here: one step each, timed."""
    times = {}
    for parallel in (True, False):
        for k in range(3):
            if k == 1:
                torch.cuda.synchronize()
                t0 = time.time()
            F.cross_entropy(vim(x[:256], parallel=parallel), y[:256]).backward()
        torch.cuda.synchronize()
        times[parallel] = (time.time() - t0) / 2
    vim.zero_grad(set_to_none=True)
    print(f"ViM step: parallel scan {times[True] * 1e3:.0f} ms, sequential {times[False] * 1e3:.0f} ms", flush=True)
    return times[True] <= times[False]


def tf32(allowed):
    """TF32 for training speed; off for the F32 test accuracy, in cuDNN's convolutions (the patch embedding) as well
    as in the matmuls: the committed 0.8405 / 0.8647 were measured with TF32 convolutions still on (torch's default),
    which flips one near-tie image of each model against the F32 engine."""
    torch.backends.cuda.matmul.allow_tf32 = allowed
    torch.backends.cudnn.allow_tf32 = allowed


def accuracy(forward, xt, yt):
    with torch.no_grad():
        right = sum((forward(xt[j:j + 500]).argmax(-1) == yt[j:j + 500]).sum().item() for j in range(0, xt.shape[0], 500))
    return right / xt.shape[0]


def write_golden(golden, name, pixels, logits):
    d = os.path.join(golden, name)
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "pixels.npy"), pixels.numpy().astype(np.float32))
    np.save(os.path.join(d, "logits.npy"), logits.numpy().astype(np.float32))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fashion", required=True)
    ap.add_argument("--repo", default=".")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vim-seconds", type=float, default=200)
    ap.add_argument("--vit-seconds", type=float, default=110)
    ap.add_argument("--variants", type=int, default=4)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--test-images", type=int, default=10000, help="fewer for a quick check of this script on a CPU")
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    t0 = time.time()
    canvas, labels = train_canvases(a.fashion, a.variants)
    fixed = canvas[:60000].astype(np.float64) / 255
    mean, std = round(float(fixed.mean()), 4), round(float(fixed.std()), 4)
    test_canvas, test_mask, test_labels, _ = fp.split(a.fashion, "test")
    check_against_committed(a.repo, test_canvas, test_mask, test_labels)
    test_canvas, test_labels = test_canvas[:a.test_images], test_labels[:a.test_images]
    x, y = normalised(canvas, mean, std, dev), torch.tensor(labels, device=dev)
    xt, yt = normalised(test_canvas, mean, std, dev), torch.tensor(test_labels, device=dev)
    sample = xt[:GOLDEN_IMAGES].cpu()
    print(f"data: {x.shape[0]} training canvases ({1 + a.variants} renderings), {xt.shape[0]} test, mean {mean} std {std}, "
          f"{time.time() - t0:.0f} s", flush=True)
    models, golden = os.path.join(a.out, "models"), os.path.join(a.out, "golden/trained")
    data_note = {"data": "placed Fashion-MNIST (weights-tools/reference/fashion_placed.py): 64x64, 60k train / 10k test",
                 "training_canvases": int(x.shape[0]), "preprocessing": f"x/255, (x-{mean})/{std}",
                 "augmentation": f"{a.variants} more renderings of the train images with fresh draws, random horizontal flip"}

    # Vision Mamba, middle cls token
    tf32(True)
    vc = dict(img_size=fp.CANVAS, patch_size=8, stride=8, channels=1, embed_dim=a.width, depth=a.depth, d_state=8, d_conv=4, expand=2,
              dt_rank="auto", num_classes=10, use_middle_cls_token=True, if_divide_out=True, rms_norm_eps=1e-5)
    vim = VisionMamba(vc).to(dev)
    vim_params = sum(p.numel() for p in vim.parameters())
    print("ViM parameters", vim_params, flush=True)
    parallel = fastest_scan(vim, x, y) if dev == "cuda" else True
    steps, acc_tf32 = train(vim, lambda b: vim(b, parallel=parallel), x, y, xt, yt, a.vim_seconds, 2e-3, dev)
    tf32(False)
    acc = accuracy(lambda b: vim(b, parallel=True), xt, yt)
    print(f"ViM: {steps} steps, test accuracy {acc:.4f} (TF32 {acc_tf32:.4f})", flush=True)
    d = os.path.join(models, "vim-placed")
    os.makedirs(d, exist_ok=True)
    vim = vim.cpu().eval()
    save_file({k: v.detach().contiguous() for k, v in vim.state_dict().items()}, os.path.join(d, "model.safetensors"))
    json.dump(dict(vc, model_type="vim", architectures=["VisionMamba"], id2label={str(i): l for i, l in enumerate(fp.LABELS)}),
              open(os.path.join(d, "config.json"), "w"), indent=1)
    preprocessor(d, mean, std)
    with torch.no_grad():
        write_golden(golden, "vim-placed", sample, vim(sample, parallel=False))
    json.dump(dict(data_note, steps=steps, batch=256, seconds=a.vim_seconds, scan="parallel" if parallel else "sequential",
                   test_accuracy_pytorch=acc, parameters=vim_params), open(os.path.join(d, "training.json"), "w"), indent=1)

    # DeiT-style ViT of about the same size
    from transformers import ViTConfig, ViTForImageClassification
    tf32(True)
    cfg = ViTConfig(image_size=fp.CANVAS, patch_size=8, num_channels=1, hidden_size=a.width, num_hidden_layers=a.depth,
                    num_attention_heads=4, intermediate_size=2 * a.width, num_labels=10,
                    id2label={i: l for i, l in enumerate(fp.LABELS)}, label2id={l: i for i, l in enumerate(fp.LABELS)},
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    vit = ViTForImageClassification(cfg).to(dev)
    vit_params = sum(p.numel() for p in vit.parameters())
    print("ViT parameters", vit_params, flush=True)
    steps, acc_tf32 = train(vit, lambda b: vit(pixel_values=b).logits, x, y, xt, yt, a.vit_seconds, 2e-3, dev)
    tf32(False)
    vit.eval()
    acc = accuracy(lambda b: vit(pixel_values=b).logits, xt, yt)
    print(f"ViT: {steps} steps, test accuracy {acc:.4f} (TF32 {acc_tf32:.4f})", flush=True)
    d = os.path.join(models, "vit-placed")
    vit = vit.cpu()
    vit.save_pretrained(d, safe_serialization=True)
    preprocessor(d, mean, std)
    with torch.no_grad():
        write_golden(golden, "vit-placed", sample, vit(pixel_values=sample).logits)
    json.dump(dict(data_note, steps=steps, batch=256, seconds=a.vit_seconds, test_accuracy_pytorch=acc, parameters=vit_params),
              open(os.path.join(d, "training.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
