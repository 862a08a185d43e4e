#!/usr/bin/env python3
"""Test fixtures for the pure-Java .pth reader (weights-tools PthReader).

  python3 make_pth_fixtures.py OUT_DIR            # needs torch + safetensors (run on the GPU machine)
  python3 make_pth_fixtures.py OUT_DIR --hostile  # only the hostile files (plain Python, no torch)

Writes, with torch.save:
  plain.pth        a flat state dict: F32, BF16, F16, I64 tensors, an nn.Parameter, a transposed
                   (non-contiguous) view and two views sharing one storage
  nested.pth       {"model": <state dict>, "epoch": 7, "args": argparse.Namespace(...)}, as training
                   scripts save it
  vim_tiny.pth     {"model": ...} with the official Vision Mamba key names and shapes (random values,
                   depth 2) for config inference
and expected_<name>.safetensors with the same tensors (contiguous) to compare against.
Hostile files (never to be executed): os_system.pth (a __reduce__ to os.system), deep_nesting.pth,
huge_string.pth, huge_storage.pth, eval_global.pth (builtins.eval via STACK_GLOBAL).
"""
import argparse, io, os, pickle, struct, sys, zipfile


def zip_with_pickle(path, pkl_bytes, extra=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", pkl_bytes)
        z.writestr("archive/version", "3\n")
        for name, data in (extra or {}).items():
            z.writestr("archive/" + name, data)


def hostile(out):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/mambalens-pwned",))
    zip_with_pickle(os.path.join(out, "os_system.pth"), pickle.dumps({"model": Evil()}, protocol=2))
    # 200k nested lists: MARK-free EMPTY_LIST / APPEND chains an unbounded recursive reader would overflow on
    deep = b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b"."
    zip_with_pickle(os.path.join(out, "deep_nesting.pth"), deep)
    # a BINUNICODE claiming 2 GiB
    zip_with_pickle(os.path.join(out, "huge_string.pth"), b"\x80\x02X" + struct.pack("<I", 0x7FFFFFFF) + b"abc.")
    # a storage persistent id claiming 10^15 floats
    huge = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000"
            b"X\x03\x00\x00\x00cpu\x8a\x07\x00\x80\xc6\xa4~\x8d\x03tQK\x00K\x01\x85K\x01\x85\x89NtR.")
    zip_with_pickle(os.path.join(out, "huge_storage.pth"), huge, {"data/0": b"\0" * 4})
    zip_with_pickle(os.path.join(out, "eval_global.pth"),
                    b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x0e__import__('os')\x85R.")


def real(out):
    import torch
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 4, generator=g)
    sd = {"linear.weight": torch.randn(3, 5, generator=g),
          "linear.bias": torch.nn.Parameter(torch.randn(3, generator=g)),
          "half": torch.randn(2, 3, generator=g).half(),
          "bfloat": torch.randn(4, generator=g).bfloat16(),
          "steps": torch.arange(5, dtype=torch.int64),
          "transposed": base.t(),                      # non-contiguous view
          "rows_2_to_4": base[2:5],                    # shares base's storage, offset 8
          "scalar": torch.tensor(3.5)}
    torch.save(sd, os.path.join(out, "plain.pth"))
    save_file({k: v.detach().contiguous() for k, v in sd.items()}, os.path.join(out, "expected_plain.safetensors"))
    torch.save({"model": sd, "epoch": 7, "args": argparse.Namespace(lr=1e-3, model="vim_tiny")},
               os.path.join(out, "nested.pth"))
    D, N, depth, classes, p, img = 16, 4, 2, 10, 4, 16
    E, R, T = 2 * D, 1, (img // p) ** 2 + 1
    vim = {"patch_embed.proj.weight": (D, 3, p, p), "patch_embed.proj.bias": (D,), "cls_token": (1, 1, D),
           "pos_embed": (1, T, D), "norm_f.weight": (D,), "head.weight": (classes, D), "head.bias": (classes,)}
    for i in range(depth):
        q = f"layers.{i}."
        vim.update({q + "norm.weight": (D,), q + "mixer.in_proj.weight": (2 * E, D), q + "mixer.out_proj.weight": (D, E)})
        for b in ("", "_b"):
            vim.update({q + f"mixer.conv1d{b}.weight": (E, 1, 4), q + f"mixer.conv1d{b}.bias": (E,),
                        q + f"mixer.x_proj{b}.weight": (R + 2 * N, E), q + f"mixer.dt_proj{b}.weight": (E, R),
                        q + f"mixer.dt_proj{b}.bias": (E,), q + ("mixer.A_log" if not b else "mixer.A_b_log"): (E, N),
                        q + f"mixer.D{b}": (E,)})
    vim = {k: torch.randn(*s, generator=g) for k, s in vim.items()}
    torch.save({"model": vim}, os.path.join(out, "vim_tiny.pth"))
    save_file(vim, os.path.join(out, "expected_vim_tiny.safetensors"))


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    hostile(out)
    if "--hostile" not in sys.argv:
        real(out)
