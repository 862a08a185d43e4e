"""One Mamba (Mamba-1) decode step in plain PyTorch, batch 1: one token id in, the next token's logits out.

Written from the weights of a transformers MambaForCausalLM (any dtype), for benchmarks/cuda_torch_bench.py: the
strongest decode PyTorch offers without the mamba_ssm / causal_conv1d kernels. The recurrent state is allocated
once and updated in place, so the tensors a step reads and writes keep their addresses and one step can be captured
in a CUDA graph (alone, or after torch.compile).

Sizes: V vocabulary, D model width, E = expand·D inner width, N SSM state size, R rank of Δ, K conv kernel, L layers.
Per layer the state is the conv window [E, K] (the last K inputs of the conv, oldest first) and the SSM state [E, N].

One step, for the token t:
    u = embedding[t]                                                   [D]
    for each layer:
        a      = RMSNorm(u) · norm.weight                              [D]
        x, z   = split(in_proj · a)                                    [E], [E]
        window = (window[:, 1:], x)            (shift, newest right)   [E, K]
        x      = SiLU(Σ_k window[:, k] · conv.weight[:, k] + conv.bias)    [E]
        δ, B, C = split(x_proj · x)                                    [R], [N], [N]
        Δ      = softplus(dt_proj · δ + dt_proj.bias)                  [E]
        h      = h · exp(Δ ⊗ A) + (Δ · x) ⊗ B,   A = −exp(A_log)       [E, N]
        y      = h · C + D · x                                         [E]
        u      = u + out_proj · (y · SiLU(z))                          [D]
    logits = lm_head · RMSNorm_f(u)                                    [V]   (lm_head = embedding when tied)

Dtypes follow transformers' slow path, so that a BF16 step rounds where transformers' BF16 model does: weights,
activations and the state in the model's dtype; RMSNorm computed in F32; the residual stream u in F32 when
config.residual_in_fp32; exp(Δ ⊗ A) and (Δ · x) ⊗ B in F32, rounded once when written into the state; logits F32.
In F32 all of it is plain F32.
"""
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F


class LayerWeights(NamedTuple):
    norm: torch.Tensor                    # [D]
    in_proj: torch.Tensor                 # [2E, D]
    in_proj_bias: Optional[torch.Tensor]  # [2E] or None
    conv: torch.Tensor                    # [E, K]   (conv1d.weight [E, 1, K]: depthwise)
    conv_bias: Optional[torch.Tensor]     # [E] or None
    x_proj: torch.Tensor                  # [R + 2N, E]
    dt_proj: torch.Tensor                 # [E, R]
    dt_proj_bias: torch.Tensor            # [E]
    A: torch.Tensor                       # [E, N]  F32, −exp(A_log)
    D: torch.Tensor                       # [E]
    out_proj: torch.Tensor                # [D, E]
    out_proj_bias: Optional[torch.Tensor]  # [D] or None


def rms_norm(x, weight, eps):
    """transformers' MambaRMSNorm: x / sqrt(mean(x²) + eps) computed in F32, back to x's dtype, times the weight."""
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.square().mean() + eps)).to(x.dtype)


def _plain(t):
    return None if t is None else t.detach()


class MambaDecodeStep:
    """The decode step of a transformers MambaForCausalLM, sharing its weights (no copy) and holding its own state."""

    def __init__(self, lm):
        c = lm.config
        if c.hidden_act != "silu":
            raise ValueError(f"the step is written for SiLU, the config says {c.hidden_act}")
        backbone = lm.backbone
        self.eps = c.layer_norm_epsilon
        self.residual_in_fp32 = getattr(c, "residual_in_fp32", True)
        self.embedding = backbone.embeddings.weight.detach()                                   # [V, D]
        self.norm_f = backbone.norm_f.weight.detach()                                          # [D]
        self.lm_head = self.embedding if c.tie_word_embeddings else lm.lm_head.weight.detach()  # [V, D]
        self.dtype = self.embedding.dtype
        self.layers = []
        for block in backbone.layers:
            m = block.mixer
            E, _, K = m.conv1d.weight.shape
            self.layers.append(LayerWeights(
                norm=block.norm.weight.detach(),
                in_proj=m.in_proj.weight.detach(), in_proj_bias=_plain(m.in_proj.bias),
                conv=m.conv1d.weight.detach().reshape(E, K), conv_bias=_plain(m.conv1d.bias),
                x_proj=m.x_proj.weight.detach(),
                dt_proj=m.dt_proj.weight.detach(), dt_proj_bias=m.dt_proj.bias.detach(),
                A=-torch.exp(m.A_log.detach().float()),
                D=m.D.detach(),
                out_proj=m.out_proj.weight.detach(), out_proj_bias=_plain(m.out_proj.bias)))
        first = self.layers[0]
        self.E, self.K = first.conv.shape
        self.N = first.A.shape[1]
        self.R = first.dt_proj.shape[1]
        device = self.embedding.device
        # The state, allocated once: every step rewrites these tensors in place.
        self.conv_state = [torch.zeros(self.E, self.K, dtype=self.dtype, device=device) for _ in self.layers]  # [E, K] each
        self.ssm_state = [torch.zeros(self.E, self.N, dtype=self.dtype, device=device) for _ in self.layers]   # [E, N] each

    def reset(self):
        """Back to the empty context (in place: the tensors keep their addresses)."""
        for t in self.conv_state + self.ssm_state:
            t.zero_()

    def mixer(self, i, a):
        """Layer i's mixer for the normalised input a [D]: advances layer i's state, returns its output [D]."""
        p = self.layers[i]
        xz = F.linear(a, p.in_proj, p.in_proj_bias)                            # [2E]
        x, z = xz.split(self.E)                                                # [E], [E]: the SSM input and its gate

        # Causal depthwise conv, one step: shift the window left by one, x enters on the right.
        window = self.conv_state[i]                                            # [E, K]
        window.copy_(torch.cat((window[:, 1:], x.unsqueeze(1)), dim=1))
        x = (window * p.conv).sum(dim=1)                                       # [E]
        if p.conv_bias is not None:
            x = x + p.conv_bias
        x = F.silu(x)

        # Selection: Δ, B and C depend on the input.
        delta_low, B, C = F.linear(x, p.x_proj).split((self.R, self.N, self.N))  # [R], [N], [N]
        delta = F.softplus(F.linear(delta_low, p.dt_proj, p.dt_proj_bias))    # [E]  Δ > 0

        # Discretise (zero-order hold on A, Euler on B) and advance the state: h = h·exp(Δ·A) + (Δ·x)·B.
        dA = torch.exp(delta.float().unsqueeze(1) * p.A)                       # [E, N]  F32
        dBx = (delta.float() * x.float()).unsqueeze(1) * B.float()             # [E, N]  F32
        h = self.ssm_state[i]                                                  # [E, N]
        h.copy_(torch.addcmul(dBx, h, dA))                                     # in place, one rounding to h's dtype

        y = h @ C + x * p.D                                                    # [E]  read-out plus the skip D·x
        return F.linear(y * F.silu(z), p.out_proj, p.out_proj_bias)            # [D]

    def forward(self, token):
        """token: [1] int64 on the model's device. Returns the logits [V] (F32) and advances the state."""
        u = F.embedding(token, self.embedding)[0]                              # [D]
        for i, p in enumerate(self.layers):
            residual = u.float() if self.residual_in_fp32 else u
            u = residual + self.mixer(i, rms_norm(u.to(self.dtype), p.norm, self.eps))
        u = rms_norm(u, self.norm_f, self.eps)                                 # [D]
        return F.linear(u.to(self.lm_head.dtype), self.lm_head).float()        # [V]

    def greedy_step(self, token):
        """forward, then the argmax written back into token: the next step's input. A CUDA graph of this call,
        replayed, decodes greedily without the host; the logits stay readable after each replay."""
        logits = self.forward(token)
        token.copy_(torch.argmax(logits, dim=0, keepdim=True))
        return logits
