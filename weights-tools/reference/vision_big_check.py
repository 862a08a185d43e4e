#!/usr/bin/env python3
"""On the GPU machine: the real ViM-tiny (224/16, D=192, depth 24) and DeiT-tiny (224/16, D=192, 12
layers, 3 heads) configs with random weights, plus the bundled Fashion-MNIST demo models. For each:
reference logits from PyTorch, the Java engine's logits (CPU, `classify --pixels`), and images/s of
both on the machine's CPU at the same thread count, batch 1, in the same run.

  python3 vision_big_check.py --java "java ... -jar mambalens.jar" --threads 16 --out OUT.json
"""
import argparse, json, os, re, shlex, subprocess, sys, tempfile, time
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(__file__))
from vim_torch import VisionMamba
import vit_fixtures
from transformers import ViTForImageClassification

VIM_TINY = dict(img_size=224, patch_size=16, stride=16, channels=3, embed_dim=192, depth=24, d_state=16, d_conv=4,
                expand=2, dt_rank="auto", num_classes=1000, use_middle_cls_token=True, if_divide_out=True, rms_norm_eps=1e-5)


def images_per_second(fn, x, repeats=10):
    fn(x[:1])
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            fn(x[:1])
        best = min(best, (time.perf_counter() - t) / repeats)
    return 1 / best


def java(cmd, model, pixels, out):
    subprocess.run(shlex.split(cmd) + ["classify", "--model", model, "--pixels", pixels, "--out", out, "--top", "1"],
                   capture_output=True, text=True, check=True)


def java_images_per_second(bench, threads, model):
    """JMH ClassifierBenchmark (batch 1, warmed up) with the kernels on `threads` threads."""
    p = subprocess.run(shlex.split(bench) + ["ClassifierBenchmark", "-p", "model=" + model, "-wi", "2", "-i", "3", "-w", "2", "-r", "2",
                                             "-jvmArgsAppend", f"--add-modules jdk.incubator.vector -Dmambalens.threads={threads}"], capture_output=True, text=True, check=True)
    return float(re.search(r"classify\s+\S+\s+thrpt\s+\d+\s+([\d.]+)", p.stdout).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--java", required=True)
    ap.add_argument("--bench", required=True, help="command that runs benchmarks.jar")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repo", default=".")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = tempfile.mkdtemp()
    results = []
    # ViM-tiny, random weights (the reference module's init), sequential-scan reference
    torch.manual_seed(5)
    vim = VisionMamba(VIM_TINY).eval()
    d = os.path.join(work, "vim_tiny")
    os.makedirs(d)
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in vim.state_dict().items()}, os.path.join(d, "model.safetensors"))
    json.dump(dict(VIM_TINY, model_type="vim"), open(os.path.join(d, "config.json"), "w"))
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(6))
    np.save(os.path.join(d, "pixels.npy"), pixels.numpy())
    with torch.no_grad():
        np.save(os.path.join(d, "logits.npy"), vim(pixels).numpy())
        vim_ips = max(images_per_second(lambda b: vim(b, parallel=True), pixels), images_per_second(lambda b: vim(b), pixels, 2))
    cases = [("vim_tiny_224", d, vim_ips)]
    # DeiT-tiny in the ViT layout
    vit_fixtures.make("deit_tiny", vit_fixtures.BIG["deit_tiny"], work, 77)
    d = os.path.join(work, "deit_tiny")
    vit = ViTForImageClassification.from_pretrained(d, attn_implementation="eager").eval()
    px = torch.tensor(np.load(os.path.join(d, "pixels.npy")))
    with torch.no_grad():
        cases.append(("deit_tiny_224", d, images_per_second(lambda b: vit(pixel_values=b).logits, px)))
    # the bundled demo models, on their reference test images
    for name in ("vim-fashion", "vit-fashion"):
        d = os.path.join(a.repo, "models", name)
        ref = os.path.join(a.repo, "engine/src/test/resources/golden/trained", name)
        tmp = os.path.join(work, name)
        os.makedirs(tmp)
        for f in ("pixels.npy", "logits.npy"):
            os.symlink(os.path.abspath(os.path.join(ref, f)), os.path.join(tmp, f))
        px = torch.tensor(np.load(os.path.join(ref, "pixels.npy")))
        with torch.no_grad():
            if name.startswith("vim"):
                m = VisionMamba(json.load(open(os.path.join(d, "config.json")))).eval()
                from safetensors.torch import load_file
                m.load_state_dict(load_file(os.path.join(d, "model.safetensors")))
                ips = max(images_per_second(lambda b: m(b, parallel=True), px), images_per_second(lambda b: m(b), px))
            else:
                m = ViTForImageClassification.from_pretrained(d, attn_implementation="eager").eval()
                ips = images_per_second(lambda b: m(pixel_values=b).logits, px)
        cases.append((name + "_28", d, ips, tmp))
    for case in cases:
        name, model, torch_ips = case[:3]
        ref_dir = case[3] if len(case) > 3 else model
        out = os.path.join(work, name + "_java.npy")
        java(a.java, model, os.path.join(ref_dir, "pixels.npy"), out)
        java_ips = java_images_per_second(a.bench, a.threads, model)
        got = np.load(out)
        want = np.load(os.path.join(ref_dir, "logits.npy"))
        rel = float(np.abs(got - want).max() / np.abs(want).max())
        results.append({"model": name, "max_rel_error": rel, "ok": rel < 1e-4, "threads": a.threads,
                        "java_images_per_s": java_ips, "pytorch_cpu_images_per_s": torch_ips})
        print(json.dumps(results[-1]), flush=True)
    json.dump({"threads": a.threads, "torch": torch.__version__, "results": results}, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
