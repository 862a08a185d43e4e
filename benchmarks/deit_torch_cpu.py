#!/usr/bin/env python3
"""DeiT-tiny (ViT layout) in plain PyTorch on the CPU, the reference for the engine's ViT speed on the same cores.

Builds transformers' ViTModel math from a checkpoint directory (config.json + model.safetensors in transformers'
ViTForImageClassification keys): patch convolution, cls token first, position embeddings, pre-LayerNorm blocks with
exact GELU, the final LayerNorm and the classifier on the cls token. Eager, under torch.no_grad(), as transformers
runs it; needs only torch and numpy (Debian's python3-torch is enough).

  python3 benchmarks/make_vision_checkpoints.py /tmp/vision                    # random weights at DeiT-tiny's config
  /usr/bin/python3 benchmarks/deit_torch_cpu.py /tmp/vision/deit-tiny-224 --pixels /tmp/deit-pixels.npy
        # writes the pixels [8, 3, 224, 224] (seeded) when the file is missing, times batch 1 and batch 8
  ./mambalens classify --model /tmp/vision/deit-tiny-224 --pixels /tmp/deit-pixels.npy --out /tmp/deit-java.npy
  /usr/bin/python3 benchmarks/deit_torch_cpu.py /tmp/vision/deit-tiny-224 --pixels /tmp/deit-pixels.npy --java /tmp/deit-java.npy
        # also prints the largest difference between the engine's logits and these

Timing: torch.set_num_threads(--threads, default 2); per batch size, the median of --repeats forwards after 5 warm-up
ones, printed as ms per forward and images per second.

Debian's torch 1.13 does its linear layers through the system BLAS (BLAS_INFO=generic), which is netlib's reference
BLAS unless another is installed: 20 times slower than a tuned one. A fair reference takes Debian's OpenBLAS without
installing it, and names the core type that OpenBLAS 0.3.21 does not recognise on newer Xeons (it falls back to SSE3):
  apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb /tmp/openblas
  LD_LIBRARY_PATH=/tmp/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=2 \
      /usr/bin/python3 benchmarks/deit_torch_cpu.py ...
"""
import argparse, json, math, os, struct, time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "F16": np.float16}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[begin:end], np.uint16).astype(np.uint32) << 16
            array = raw.view(np.float32)
        else:
            array = np.frombuffer(data[begin:end], dtypes[info["dtype"]]).astype(np.float32)
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return tensors


class DeiT:
    def __init__(self, model_dir):
        self.config = json.load(open(os.path.join(model_dir, "config.json")))
        self.w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.heads = self.config["num_attention_heads"]
        self.layers = self.config["num_hidden_layers"]
        self.patch = self.config["patch_size"]
        self.eps = self.config.get("layer_norm_eps", 1e-12)

    def attention(self, x, p):
        B, T, D = x.shape
        H, dh = self.heads, D // self.heads
        w = self.w

        def heads(name):
            y = F.linear(x, w[p + f"attention.attention.{name}.weight"], w.get(p + f"attention.attention.{name}.bias"))
            return y.view(B, T, H, dh).transpose(1, 2)                       # [B, H, T, dh]

        q, k, v = heads("query"), heads("key"), heads("value")
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), dim=-1)
        context = (probs @ v).transpose(1, 2).reshape(B, T, D)
        return F.linear(context, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])

    def __call__(self, pixels):
        w, D = self.w, self.config["hidden_size"]
        x = F.conv2d(pixels, w["vit.embeddings.patch_embeddings.projection.weight"],
                     w["vit.embeddings.patch_embeddings.projection.bias"], stride=self.patch)
        x = x.flatten(2).transpose(1, 2)                                       # [B, patches, D]
        cls = w["vit.embeddings.cls_token"].expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + w["vit.embeddings.position_embeddings"]
        for i in range(self.layers):
            p = f"vit.encoder.layer.{i}."
            h = F.layer_norm(x, (D,), w[p + "layernorm_before.weight"], w[p + "layernorm_before.bias"], self.eps)
            x = x + self.attention(h, p)
            h = F.layer_norm(x, (D,), w[p + "layernorm_after.weight"], w[p + "layernorm_after.bias"], self.eps)
            h = F.gelu(F.linear(h, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))
            x = x + F.linear(h, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
        x = F.layer_norm(x, (D,), w["vit.layernorm.weight"], w["vit.layernorm.bias"], self.eps)
        return F.linear(x[:, 0], w["classifier.weight"], w["classifier.bias"])


def median_ms(fn, repeats):
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--pixels", required=True, help="float32 NPY [8, 3, S, S]; written (seeded normal values) when missing")
    ap.add_argument("--java", help="the engine's logits for the same pixels (classify --out): print the largest difference")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model = DeiT(args.model)
    size = model.config["image_size"]
    if not os.path.exists(args.pixels):
        np.save(args.pixels, np.random.default_rng(5).standard_normal((8, 3, size, size), dtype=np.float32))
    pixels = torch.from_numpy(np.load(args.pixels))
    with torch.no_grad():
        logits = model(pixels).numpy()
        if args.java:
            java = np.load(args.java)
            scale = np.abs(logits).max()
            print(f"engine vs torch logits {list(java.shape)}: max |difference| {np.abs(java - logits).max():.3e} "
                  f"({np.abs(java - logits).max() / scale:.2e} of the largest logit); same argmax: "
                  f"{bool((java.argmax(1) == logits.argmax(1)).all())}")
        for batch in (1, 8):
            ms = median_ms(lambda: model(pixels[:batch]), args.repeats)
            print(f"torch {torch.__version__} CPU, {torch.get_num_threads()} threads, batch {batch}: {ms:.1f} ms per forward, "
                  f"{1e3 * batch / ms:.1f} images/s")


if __name__ == "__main__":
    main()
