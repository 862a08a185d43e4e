#!/usr/bin/env python3
"""Writes a reference dump for `./mambalens verify`: what the reference implementation computes for one input.

  python3 dump_reference.py --model DIR (--text T | --token-ids 5,17,3 | --pixels FILE.npy [--index N])
                            --out DUMP.safetensors [--dtype float32|bfloat16] [--device cpu|cuda]

The dump is a safetensors file (batch dimension dropped):
  input_ids        I64 [L]              the tokens (language models and text classifiers)
  pixel_values     F32 [C, H, W]        the preprocessed image (image classifiers)
  logits           F32 [L, V]           a causal LM's logits at every position;
                   F32 [labels]         a classifier's logits (a text classifier's at its read position)
  hidden_states.K  F32 [L, D] (images: [T, D]) for K = 0 ... n: the tuple transformers returns with
                   output_hidden_states=True, in its order and its convention for the family
and metadata naming the family, the reference and its versions.

The reference is transformers' class named by config.json's "architectures", except for the checkpoints that
transformers has no class for: our Mamba, Mamba-2, RWKV and RecurrentGemma ...ForSequenceClassification
(sequence_classifiers.py, beside this script; their hidden states are their backbone's) and Vision Mamba
(vim_torch.py; hidden states: the residual stream entering each layer, then norm_f of the last one). Weights are upcast to --dtype (default float32: a BF16
checkpoint is then compared at F32, as MambaLens computes it).
"""
import argparse, json, os, struct, sys, tempfile

import numpy as np


def write_safetensors(path, tensors, metadata):
    """tensors: name -> numpy array (int64 or float32), written in the given order, atomically."""
    dtypes = {np.dtype(np.int64): "I64", np.dtype(np.float32): "F32"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtypes[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".dump-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def tokenize(model_dir, text):
    """The ids of text: transformers' tokenizer where the directory configures one, else its bare tokenizer.json."""
    if os.path.exists(os.path.join(model_dir, "tokenizer_config.json")):
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(model_dir)(text)["input_ids"]
    from tokenizers import Tokenizer
    return Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json")).encode(text).ids


def reference(model_dir, config, dtype, device):
    """(model, run): run(inputs) -> (logits [...], [hidden states [1, L, D]])."""
    import torch
    here = os.path.dirname(os.path.abspath(__file__))
    arch = (config.get("architectures") or [""])[0]
    sys.path.insert(0, here)
    from sequence_classifiers import CLASSIFIERS
    if config["model_type"] == "vim" or arch in CLASSIFIERS:
        from safetensors.torch import load_file
        if config["model_type"] == "vim":
            from vim_torch import VisionMamba
            model = VisionMamba(config)
        else:
            from transformers import AutoConfig
            model = CLASSIFIERS[arch](AutoConfig.from_pretrained(model_dir))
        state = load_file(os.path.join(model_dir, "model.safetensors"))
        model.load_state_dict({k: v.to(dtype) for k, v in state.items()})
        model = model.to(dtype=dtype, device=device).eval()
        if config["model_type"] == "vim":
            return model, lambda x: vim_outputs(model, x)
        return model, lambda ids: (model(ids), list(model.backbone_outputs(ids, output_hidden_states=True).hidden_states))
    import transformers
    cls = getattr(transformers, arch, None)
    if cls is None:
        raise SystemExit(f"{model_dir}: transformers {transformers.__version__} has no class {arch!r} (config.json \"architectures\")")
    try:
        model = cls.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager")
    except (ValueError, TypeError):                           # families without an attention choice
        model = cls.from_pretrained(model_dir, dtype=dtype)
    model = model.to(device).eval()

    def run(x):
        if config["model_type"] == "vit":
            out = model(pixel_values=x, output_hidden_states=True)
        else:
            out = model(input_ids=x, output_hidden_states=True, use_cache=False)
        return out.logits, list(out.hidden_states)
    return model, run


def vim_outputs(model, pixels):
    streams, final = [], []
    hook = model.norm_f.register_forward_hook(lambda m, args, out: final.append(out))
    try:
        logits = model(pixels, hidden_hook=lambda i, residual: streams.append(residual))
    finally:
        hook.remove()
    return logits, streams + final


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint directory (config.json, model.safetensors)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", help="text, tokenised with the model's tokenizer")
    g.add_argument("--token-ids", help="comma-separated token ids")
    g.add_argument("--pixels", help="float32 NPY [C, H, W] or [N, C, H, W] of preprocessed pixels (image classifiers)")
    p.add_argument("--index", type=int, default=0, help="which image of an [N, C, H, W] --pixels file (default 0)")
    p.add_argument("--out", required=True, help="the dump to write (.safetensors)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="the reference's compute dtype")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    a = p.parse_args()

    config = json.load(open(os.path.join(a.model, "config.json")))
    if (config["model_type"] in ("vit", "vim")) != (a.pixels is not None):
        p.error(f"{a.model}: give {'--pixels' if a.pixels is None else '--text or --token-ids'} for this model_type")
    ids = None if a.token_ids is None else [int(t) for t in a.token_ids.split(",")]
    print(json.dumps(dump(a.model, a.out, text=a.text, ids=ids, pixels=a.pixels, index=a.index, dtype=a.dtype, device=a.device)))


def dump(model_dir, out, text=None, ids=None, pixels=None, index=0, dtype="float32", device="cpu"):
    """Writes the dump of one input (text, ids or an NPY file of pixels) to out; returns a summary."""
    import torch
    import transformers
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    config = json.load(open(os.path.join(model_dir, "config.json")))
    model, run = reference(model_dir, config, getattr(torch, dtype), device)
    tensors = {}
    if pixels is not None:
        image = np.load(pixels).astype(np.float32)
        image = image[index] if image.ndim == 4 else image
        tensors["pixel_values"] = image
        x = torch.from_numpy(image)[None].to(device=device, dtype=getattr(torch, dtype))
    else:
        ids = tokenize(model_dir, text) if ids is None else ids
        tensors["input_ids"] = np.asarray(ids, dtype=np.int64)
        x = torch.tensor([ids], device=device)
    with torch.no_grad():
        logits, hidden = run(x)
    tensors["logits"] = logits[0].float().cpu().numpy()
    for k, h in enumerate(hidden):
        tensors[f"hidden_states.{k}"] = h[0].float().cpu().numpy()
    metadata = {"format": "mambalens-reference", "model_type": config["model_type"],
                "reference": type(model).__module__ + "." + type(model).__name__, "dtype": dtype,
                "transformers": transformers.__version__, "torch": torch.__version__}
    write_safetensors(out, tensors, metadata)
    return {"out": out, "reference": metadata["reference"], "logits": list(tensors["logits"].shape),
            "hidden_states": len(hidden), "hidden_shape": list(tensors["hidden_states.0"].shape) if hidden else None}


if __name__ == "__main__":
    main()
