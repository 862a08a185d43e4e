"""Vision Mamba (hustvl/Vim, "bimambav2 ... midclstok div2", DESIGN §5) in plain PyTorch, with the official
parameter names, so that it runs where mamba_ssm's CUDA kernels are absent. The scan is the sequential
reference recurrence (exact, slow) or a Hillis-Steele parallel scan (for training).

Config keys (the config.json MambaLens reads, `model_type: "vim"`): img_size, patch_size, stride,
channels, embed_dim, depth, d_state, d_conv, expand, dt_rank, num_classes, use_middle_cls_token,
if_divide_out, rms_norm_eps.
"""
import math
import torch
import torch.nn.functional as F
from torch import nn


def selective_scan(u, delta, A, B, C, D, z, parallel=False):
    """u, delta, z [b, L, E]; A [E, N]; B, C [b, L, N]; D [E] -> (C·H + D·u)·silu(z) [b, L, E]."""
    a = torch.exp(delta[..., None] * A)                          # [b, L, E, N]
    bu = delta[..., None] * B[:, :, None, :] * u[..., None]
    if parallel:
        L, d = u.shape[1], 1
        while d < L:
            a_prev = torch.cat([torch.ones_like(a[:, :d]), a[:, :-d]], dim=1)
            b_prev = torch.cat([torch.zeros_like(bu[:, :d]), bu[:, :-d]], dim=1)
            bu = bu + a * b_prev
            a = a * a_prev
            d *= 2
        h = bu
    else:
        hs, state = [], torch.zeros_like(bu[:, 0])
        for t in range(u.shape[1]):
            state = a[:, t] * state + bu[:, t]
            hs.append(state)
        h = torch.stack(hs, dim=1)
    y = torch.einsum("blen,bln->ble", h, C) + u * D
    return y * F.silu(z)


class BiMambaV2(nn.Module):
    def __init__(self, D, N, K, expand, R):
        super().__init__()
        E = expand * D
        self.E, self.N, self.R, self.K = E, N, R, K
        self.in_proj = nn.Linear(D, 2 * E, bias=False)
        self.out_proj = nn.Linear(E, D, bias=False)
        for b in ("", "_b"):
            setattr(self, "conv1d" + b, nn.Conv1d(E, E, K, groups=E, padding=K - 1, bias=True))
            setattr(self, "x_proj" + b, nn.Linear(E, R + 2 * N, bias=False))
            setattr(self, "dt_proj" + b, nn.Linear(R, E, bias=True))
            A = torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1)
            setattr(self, "A_log" if not b else "A_b_log", nn.Parameter(A.clone()))
            setattr(self, "D" + b, nn.Parameter(torch.ones(E)))
            dt = torch.exp(torch.rand(E) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
            with torch.no_grad():
                getattr(self, "dt_proj" + b).bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.divide_out = True

    def branch(self, x, z, b, parallel):
        L = x.shape[1]
        u = F.silu(getattr(self, "conv1d" + b)(x.transpose(1, 2))[..., :L]).transpose(1, 2)
        dt, B, C = torch.split(getattr(self, "x_proj" + b)(u), [self.R, self.N, self.N], dim=-1)
        delta = F.softplus(getattr(self, "dt_proj" + b)(dt))
        A = -torch.exp(getattr(self, "A_log" if not b else "A_b_log"))
        return selective_scan(u, delta, A, B, C, getattr(self, "D" + b), z, parallel)

    def forward(self, h, parallel=False):
        x, z = self.in_proj(h).chunk(2, dim=-1)
        y = self.branch(x, z, "", parallel)
        y_b = self.branch(x.flip(1), z.flip(1), "_b", parallel).flip(1)
        y = y + y_b
        return self.out_proj(y / 2 if self.divide_out else y)


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        D = c["embed_dim"]
        R = math.ceil(D / 16) if c.get("dt_rank", "auto") == "auto" else c["dt_rank"]
        self.norm = RMSNorm(D, c.get("rms_norm_eps", 1e-5))
        self.mixer = BiMambaV2(D, c["d_state"], c.get("d_conv", 4), c.get("expand", 2), R)
        self.mixer.divide_out = c.get("if_divide_out", True)


class PatchEmbed(nn.Module):
    def __init__(self, c):
        super().__init__()
        p = c["patch_size"]
        self.proj = nn.Conv2d(c.get("channels", 3), c["embed_dim"], p, stride=c.get("stride", p))

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionMamba(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        D, p, s = c["embed_dim"], c["patch_size"], c.get("stride", c["patch_size"])
        grid = (c["img_size"] - p) // s + 1
        self.patch_embed = PatchEmbed(c)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, D))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.layers = nn.ModuleList(Block(c) for _ in range(c["depth"]))
        self.norm_f = RMSNorm(D, c.get("rms_norm_eps", 1e-5))
        self.head = nn.Linear(D, c["num_classes"])

    def cls_position(self, m):
        return m // 2 if self.c.get("use_middle_cls_token", True) else 0

    def forward(self, x, parallel=False, hidden_hook=None):
        x = self.patch_embed(x)
        pos = self.cls_position(x.shape[1])
        x = torch.cat([x[:, :pos], self.cls_token.expand(x.shape[0], -1, -1), x[:, pos:]], dim=1) + self.pos_embed
        residual, hidden = None, x
        for i, layer in enumerate(self.layers):
            residual = hidden if residual is None else residual + hidden
            if hidden_hook is not None:
                hidden_hook(i, residual)
            hidden = layer.mixer(layer.norm(residual), parallel)
        residual = residual + hidden
        return self.head(self.norm_f(residual)[:, pos])
