#!/usr/bin/env python3
"""Golden gradients (PyTorch autograd) and golden hidden/unified attention (transformers internals) for the
explainability methods, made from the committed fixtures' own weights and inputs.

  python3 gradient_fixtures.py --repo . --out DIR

For every fixture it writes DIR/<fixture path>/..., to be copied over the fixture directory:
  Vision Mamba (vim_torch.py, the plain-PyTorch ViM of the golden tests), first image, predicted class:
    grad_target.json {"target": k}, grad_residual.npy [layers, T, D] (∂logit/∂ residual stream entering
    each layer), grad_pixels.npy [C, S, S]
  ViT (transformers ViTForImageClassification, eager attention), first image, predicted class:
    grad_target.json, grad_attention.npy [layers, H, T, T] (∂logit/∂ softmax probabilities), grad_pixels.npy
  Mamba LM (transformers MambaForCausalLM, F32 fixtures), the first 24 prompt tokens, the greedy token at
  the last position:
    grad_target.json {"tokens": [...], "position": p, "token": t}, grad_residual.npy [layers, L, D]
    (∂logit/∂ the input of block l), alpha_<l>.npy [E, L, L] (hidden attention from the
    mixer's recorded Δ, B, C: cumulative products of exp(Δ·A) in float64), unified_<l>.npy [E, L, L].
  GPT-NeoX LM (transformers GPTNeoXForCausalLM in float64, eager attention), the first 24 prompt tokens, the
  greedy token at the last position:
    grad_target.json, grad_attention.npy [layers, H, L, L] (∂logit/∂ softmax probabilities),
    grad_residual.npy [layers, L, D]

  --only vim,vit,mamba,gptneox   makes only those families' files.
"""
import argparse, json, os
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def save(out, name, array):
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, name), np.ascontiguousarray(array, dtype=np.float32))


def vim(repo, fixture, model_dir, out):
    import sys
    sys.path.insert(0, os.path.join(repo, "weights-tools/reference"))
    from vim_torch import VisionMamba
    config = json.load(open(os.path.join(model_dir, "config.json")))
    model = VisionMamba(config).double().eval()
    model.load_state_dict({k: v.double() for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()})
    pixels = torch.from_numpy(np.load(os.path.join(repo, fixture, "pixels.npy"))[:1]).double().requires_grad_(True)
    streams = {}

    def keep(i, r):
        r.retain_grad()
        streams[i] = r
    logits = model(pixels, hidden_hook=keep)
    k = int(logits[0].argmax())
    logits[0, k].backward()
    save(out, "grad_residual.npy", torch.stack([streams[i].grad[0] for i in range(len(streams))]).numpy())
    save(out, "grad_pixels.npy", pixels.grad[0].numpy())
    json.dump({"target": k}, open(os.path.join(out, "grad_target.json"), "w"))
    print(fixture, "vim target", k, "max |grad_residual|", max(float(streams[i].grad.abs().max()) for i in streams))


def vit(repo, fixture, model_dir, out):
    from transformers import ViTForImageClassification
    model = ViTForImageClassification.from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float64).eval()
    pixels = torch.from_numpy(np.load(os.path.join(repo, fixture, "pixels.npy"))[:1]).double().requires_grad_(True)
    result = model(pixel_values=pixels, output_attentions=True)
    for a in result.attentions:
        a.retain_grad()
    k = int(result.logits[0].argmax())
    result.logits[0, k].backward()
    save(out, "grad_attention.npy", torch.stack([a.grad[0] for a in result.attentions]).numpy())
    save(out, "grad_pixels.npy", pixels.grad[0].numpy())
    json.dump({"target": k}, open(os.path.join(out, "grad_target.json"), "w"))
    print(fixture, "vit target", k, "max |grad_attention|", max(float(a.grad.abs().max()) for a in result.attentions))


def mixer_internals(model):
    """Forward hooks that keep, per layer, the mixer's in_proj output and the scan output that out_proj reads,
    as transformers computes them (its fallback path calls the conv and the scan as functions, not modules)."""
    seen = {}
    for l, block in enumerate(model.backbone.layers):
        m = block.mixer
        m.in_proj.register_forward_hook(lambda mod, i, o, l=l: seen.setdefault(l, {}).__setitem__("xz", o.detach()))
        m.out_proj.register_forward_hook(lambda mod, i, o, l=l: seen.setdefault(l, {}).__setitem__("y", i[0].detach()))
    return seen


def attention_from_internals(mixer, s):
    """Hidden attention α [E, L, L] and unified attention [E, L, L] in float64 from transformers' in_proj
    output and the layer's weights; α must reproduce transformers' own scan output."""
    E, N = mixer.A_log.shape
    R = mixer.dt_proj.in_features
    K = mixer.conv1d.kernel_size[0]
    xz = s["xz"][0].double()                                     # [L, 2E]
    L = xz.shape[0]
    x, z = xz[:, :E], xz[:, E:]
    w = mixer.conv1d.weight.double()[:, 0, :]                    # [E, K]
    conv_bias = mixer.conv1d.bias.double() if mixer.conv1d.bias is not None else torch.zeros(E, dtype=torch.float64)
    conv = F.conv1d(x.T[None], w[:, None, :], conv_bias, padding=K - 1, groups=E)[0, :, :L].T   # s [L, E]
    u = F.silu(conv)
    dt, B, C = torch.split(u @ mixer.x_proj.weight.double().T, [R, N, N], dim=-1)
    delta = F.softplus(dt @ mixer.dt_proj.weight.double().T + mixer.dt_proj.bias.double())   # [L, E]
    A = -torch.exp(mixer.A_log.double())                         # [E, N]
    dA = torch.exp(delta[:, :, None] * A[None])                  # [L, E, N]
    alpha = torch.zeros(E, L, L, dtype=torch.float64)
    for i in range(L):
        prod = torch.ones(E, N, dtype=torch.float64)             # Π_{k=j+1..i} Ā_k, built from j = i down
        for j in range(i, -1, -1):
            alpha[:, i, j] = (prod * (delta[j][:, None] * B[j][None, :]) * C[i][None, :]).sum(-1)
            prod = prod * dA[j]
    Dskip = mixer.D.double()
    gate = F.silu(z)                                             # [L, E]
    y = (torch.einsum("eij,je->ie", alpha, u) + Dskip * u) * gate
    rebuilt = float((y - s["y"][0].double()).abs().max() / s["y"][0].abs().max())
    assert rebuilt < 1e-5, f"α does not reproduce the mixer output: {rebuilt}"
    T = torch.zeros(E, L, L, dtype=torch.float64)                # causal Toeplitz of the conv taps
    for i in range(L):
        for j in range(max(0, i - K + 1), i + 1):
            T[:, i, j] = w[:, K - 1 - (i - j)]
    inner = (alpha + torch.diag_embed(Dskip[:, None].expand(E, L))) * torch.sigmoid(conv).T[:, None, :]
    unified = gate.T[:, :, None] * torch.bmm(inner, T)
    return alpha, unified, rebuilt


def mamba(repo, fixture, model_dir, out):
    from transformers import MambaForCausalLM
    ref = json.load(open(os.path.join(repo, fixture, "reference.json")))
    ids = ref["token_ids"][:24]
    model = MambaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    seen = mixer_internals(model)
    streams = {}                                                 # each block's input, caught as the block receives it

    def keep(l):
        def hook(module, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            h.retain_grad()
            streams[l] = h
        return hook
    for l, block in enumerate(model.backbone.layers):
        block.register_forward_pre_hook(keep(l), with_kwargs=True)
    result = model(torch.tensor([ids]), use_cache=False)
    streams = [streams[l] for l in range(len(model.backbone.layers))]
    position, token = len(ids) - 1, int(result.logits[0, -1].argmax())
    result.logits[0, position, token].backward()
    save(out, "grad_residual.npy", torch.stack([h.grad[0] for h in streams]).detach().numpy())
    json.dump({"tokens": ids, "position": position, "token": token}, open(os.path.join(out, "grad_target.json"), "w"))
    for l, block in enumerate(model.backbone.layers):
        with torch.no_grad():
            alpha, unified, rebuilt = attention_from_internals(block.mixer, seen[l])
        save(out, f"alpha_{l}.npy", alpha.numpy())
        save(out, f"unified_{l}.npy", unified.numpy())
        print(fixture, "layer", l, "α reproduces the mixer output to", rebuilt)
    print(fixture, "mamba token", token, "max |grad|", max(float(h.grad.abs().max()) for h in streams))


def gptneox(repo, fixture, model_dir, out):
    from transformers import GPTNeoXForCausalLM
    ref = json.load(open(os.path.join(repo, fixture, "reference.json")))
    ids = ref["token_ids"][:24]
    model = GPTNeoXForCausalLM.from_pretrained(model_dir, dtype=torch.float64, attn_implementation="eager").eval()
    streams = {}

    def keep(l):
        def hook(module, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            h.retain_grad()
            streams[l] = h
        return hook
    for l, block in enumerate(model.gpt_neox.layers):
        block.register_forward_pre_hook(keep(l), with_kwargs=True)
    result = model(torch.tensor([ids]), use_cache=False, output_attentions=True)
    for a in result.attentions:
        a.retain_grad()
    position, token = len(ids) - 1, int(result.logits[0, -1].argmax())
    result.logits[0, position, token].backward()
    save(out, "grad_attention.npy", torch.stack([a.grad[0] for a in result.attentions]).numpy())
    save(out, "grad_residual.npy", torch.stack([streams[l].grad[0] for l in range(len(streams))]).detach().numpy())
    json.dump({"tokens": ids, "position": position, "token": token}, open(os.path.join(out, "grad_target.json"), "w"))
    print(fixture, "gpt-neox token", token, "max |grad_attention|", max(float(a.grad.abs().max()) for a in result.attentions))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=".")
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="vim,vit,mamba,gptneox")
    a = ap.parse_args()
    only = set(a.only.split(","))
    golden = "engine/src/test/resources/golden"
    if "gptneox" in only:
        for name in ("neox_parallel_f32", "neox_sequential_bf16"):
            d = f"{golden}/gptneox/{name}"
            gptneox(a.repo, d, os.path.join(a.repo, d), os.path.join(a.out, d))
    for name in ("vim_small", "vim_gray_cls0") if "vim" in only else ():
        d = f"{golden}/vim/{name}"
        vim(a.repo, d, os.path.join(a.repo, d), os.path.join(a.out, d))
    if "vim" in only:
        vim(a.repo, f"{golden}/trained/vim-fashion", os.path.join(a.repo, "models/vim-fashion"), os.path.join(a.out, golden, "trained/vim-fashion"))
    for name in ("vit_small", "vit_gray_odd") if "vit" in only else ():
        d = f"{golden}/vit/{name}"
        vit(a.repo, d, os.path.join(a.repo, d), os.path.join(a.out, d))
    if "vit" in only:
        vit(a.repo, f"{golden}/trained/vit-fashion", os.path.join(a.repo, "models/vit-fashion"), os.path.join(a.out, golden, "trained/vit-fashion"))
    for name in ("tied_f32", "conv3_rank_given") if "mamba" in only else ():
        d = f"{golden}/mamba/{name}"
        if json.load(open(os.path.join(a.repo, d, "reference.json")))["dtype"] == "float32":
            mamba(a.repo, d, os.path.join(a.repo, d), os.path.join(a.out, d))


if __name__ == "__main__":
    main()
