#!/usr/bin/env python3
"""numpy/OpenBLAS figures to set beside the engine's, taken in the same run on the same machine.

  python3 benchmarks/numpy_compare.py [--bf16 SRC_DIR DST_DIR]

Prints (as JSON) sgemm GFLOP/s at mamba-130m's in_proj prefill shape (512 x 768 -> 3072), copy
bandwidth (bytes read + written per second of a 1 GiB copy), and numpy's decode time for mamba-130m
when every layer has its own weights, and the products of ../shared/bench/mamba_floor.py's prefill floor timed
here in two parts (the same shapes, every layer its own weights): the 24 layers' GEMMs, and the tied head over
all 512 rows (its `X @ head.T`). The engine's prefill returns the last row's logits only, so the work it does
is the layers plus the head over one row (numpy_prefill_last_row_s).
--bf16 also writes a BF16 copy of a F32 safetensors checkpoint (round to nearest even).
"""
import json, os, shutil, struct, sys, time
import numpy as np

D, E, N, R, V, LAYERS = 768, 1536, 16, 48, 50280, 24


def best(fn, n=5):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def to_bf16(src, dst):
    os.makedirs(dst, exist_ok=True)
    raw = np.memmap(os.path.join(src, "model.safetensors"), np.uint8, "r")
    n = int(np.frombuffer(raw[:8], "<u8")[0])
    header = json.loads(bytes(raw[8:8 + n]))
    out, blobs, offset = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        bits = np.frombuffer(raw[8 + n + a:8 + n + b], "<u4").astype(np.uint64)
        bf = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()
        out[name] = {"dtype": "BF16", "shape": info["shape"], "data_offsets": [offset, offset + len(bf)]}
        offset += len(bf)
        blobs.append(bf)
    h = json.dumps(out).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(dst, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    shutil.copy(os.path.join(src, "config.json"), os.path.join(dst, "config.json"))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--bf16":
        to_bf16(sys.argv[2], sys.argv[3])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, D), dtype=np.float32)
    W = rng.standard_normal((2 * E, D), dtype=np.float32)
    gemm = best(lambda: X @ W.T)
    a = np.ones(256 << 20, np.uint8)
    b = np.empty_like(a)
    copy = best(lambda: np.copyto(b, a))
    mats = [[rng.standard_normal(s, dtype=np.float32) for s in [(2 * E, D), (R + 2 * N, E), (E, R), (D, E)]]
            for _ in range(LAYERS)]
    head = rng.standard_normal((V, D), dtype=np.float32)
    x, xe = np.ones(D, np.float32), np.ones(E, np.float32)

    def decode():
        for m in mats:
            m[0] @ x; m[1] @ xe; m[2] @ xe[:R]; m[3] @ xe
        head @ x

    X, XE = np.ones((512, D), np.float32), np.ones((512, E), np.float32)

    def prefill_layers():
        for m in mats:
            X @ m[0].T; XE @ m[1].T; XE[:, :R] @ m[2].T; XE @ m[3].T

    layers = best(prefill_layers, 3)
    head_all, head_last = best(lambda: X @ head.T, 3), best(lambda: X[-1:] @ head.T)
    weights = sum(m.nbytes for layer in mats for m in layer) + head.nbytes
    print(json.dumps({"numpy_sgemm_gflops": 2 * 512 * D * 2 * E / gemm / 1e9,
                      "copy_gbytes_per_s": 2 * a.nbytes / copy / 1e9,
                      "numpy_decode_distinct_weights_ms": best(decode) * 1e3,
                      "decode_weight_bytes_f32": weights,
                      "numpy_prefill_layers_s": layers,
                      "numpy_prefill_head_all_rows_s": head_all,
                      "numpy_prefill_last_row_s": layers + head_last}))


if __name__ == "__main__":
    main()
