#!/usr/bin/env python3
"""Trains the bundled demo Mamba language model on Debian's `fortunes` (real English text).

  python3 train_demo_lm.py --fortunes DIR_OF_FORTUNE_FILES --out OUT [--seconds 180]

Writes
  OUT/model/{config.json, model.safetensors, tokenizer.json, training.json}   the demo model (HF layout)
  OUT/demo_reference/{reference.json, logits.npy}     transformers' logits and greedy ids on the demo model
  OUT/tokenizer_cases.json                             `tokenizers`' encodings of a few hundred strings

The tokenizer is a byte-level BPE trained here in the GPT-NeoX style (NFC normaliser, ByteLevel
pre-tokeniser without prefix space, ByteLevel decoder, <|endoftext|> = 0, <|padding|> = 1).
The model is trained with a plain-PyTorch Mamba whose scan is a parallel (Hillis-Steele) scan and
whose parameter names are transformers' own; the exported checkpoint is then loaded back into
`MambaForCausalLM`, checked against the training module, and used to make the reference outputs.
"""
import argparse, json, math, os, random, time
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import MambaConfig, MambaForCausalLM

EOT, PAD = "<|endoftext|>", "<|padding|>"


def read_fortunes(folder):
    """Every fortune of every plain fortune file (the .dat indexes and .u8 links are skipped), by file."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith((".dat", ".u8")) or os.path.islink(path) or not os.path.isfile(path):
            continue
        text = open(path, encoding="utf-8", errors="replace").read()
        items = [f.strip("\n") for f in text.split("\n%\n")]
        out[name] = [f for f in items if f.strip()]
    return out


def train_tokenizer(texts, vocab):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOT, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def tokenizer_cases(tok, test_texts):
    rng = random.Random(7)
    crafted = [
        "", " ", "  ", "\n", "\n\n\n", "\t", " \t \n ", "a  b   c    d", "trailing spaces   ", "   leading",
        "Hello, world!", "I'll can't won't they're we've he'd DON'T YOU'LL", "it's 's 't 're",
        "1234567890 3.14159 1,000,000 0x1F 2026-11-23", "A\u00a0B\u2003C\u3000D", "tab\tseparated\tvalues",
        "caf\u00e9 cafe\u0301 na\u00efve \u00c5ngstr\u00f6m", "\u0041\u030a", "\ufb01 ligature",
        "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8", "\ud55c\uad6d\uc5b4", "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u044f\u0437\u044b\u043a",
        "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u0939\u093f\u0928\u094d\u0926\u0940",
        "emoji \U0001f600\U0001f680 \U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f44d\U0001f3fd flags \U0001f1eb\U0001f1f7",
        "math \u2211\u222b\u221a\u221e \u2264 \u2265 \u03b1\u03b2\u03b3", "quotes \u201cdouble\u201d \u2018single\u2019 \u00abguillemets\u00bb",
        "<|endoftext|>", "before<|endoftext|>after", "a <|padding|> b", "<|endoftext|><|endoftext|>",
        "mixed\r\nline\rendings\n", "punctuation!!! ??? ... --- ;;; :::", "(parens) [brackets] {braces} <angle>",
        "e-mail: someone@example.com, url: https://www.debian.org/~user/?q=1&r=2#frag",
        "snake_case camelCase PascalCase SCREAMING_CASE kebab-case", "\u0000control\u0007chars\u001b[0m",
        "x" * 300, "ab " * 100, "\U00010348 gothic \U0001d11e music",
    ]
    samples = []
    for t in test_texts:
        if len(samples) >= 260:
            break
        if rng.random() < 0.5:
            a = rng.randrange(0, max(1, len(t) - 1))
            t = t[a:a + rng.randrange(1, 400)]
        samples.append(t)
    cases = []
    for text in crafted + samples:
        enc = tok.encode(text)
        cases.append({"text": text, "ids": enc.ids, "decoded": tok.decode(enc.ids, skip_special_tokens=False)})
    return cases


class Mixer(torch.nn.Module):
    """transformers' MambaMixer parameters, with a parallel scan for training speed."""

    def __init__(self, c):
        super().__init__()
        D, E, N, R, K = c.hidden_size, c.intermediate_size, c.state_size, c.time_step_rank, c.conv_kernel
        self.E, self.N, self.R, self.K = E, N, R, K
        self.in_proj = torch.nn.Linear(D, 2 * E, bias=c.use_bias)
        self.conv1d = torch.nn.Conv1d(E, E, K, groups=E, padding=K - 1, bias=c.use_conv_bias)
        self.x_proj = torch.nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = torch.nn.Linear(R, E, bias=True)
        self.A_log = torch.nn.Parameter(torch.zeros(E, N))
        self.D = torch.nn.Parameter(torch.ones(E))
        self.out_proj = torch.nn.Linear(E, D, bias=c.use_bias)

    def forward(self, h):                                   # h [B, L, D]
        L = h.shape[1]
        x, z = self.in_proj(h).chunk(2, dim=-1)             # [B, L, E] each
        u = F.silu(self.conv1d(x.transpose(1, 2))[..., :L]).transpose(1, 2)
        dt, B, C = torch.split(self.x_proj(u), [self.R, self.N, self.N], dim=-1)
        delta = F.softplus(self.dt_proj(dt))                # [B, L, E]
        A = -torch.exp(self.A_log)                          # [E, N]
        a = torch.exp(delta[..., None] * A)                 # [B, L, E, N]
        b = delta[..., None] * B[:, :, None, :] * u[..., None]
        d = 1
        while d < L:                                        # Hillis-Steele scan of H_t = a_t H_{t-1} + b_t
            a_prev = torch.cat([torch.ones_like(a[:, :d]), a[:, :-d]], dim=1)
            b_prev = torch.cat([torch.zeros_like(b[:, :d]), b[:, :-d]], dim=1)
            b = b + a * b_prev
            a = a * a_prev
            d *= 2
        y = torch.einsum("blen,bln->ble", b, C) + u * self.D
        return self.out_proj(y * F.silu(z))


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = RMSNorm(c.hidden_size, c.layer_norm_epsilon)
        self.mixer = Mixer(c)

    def forward(self, x):
        return x + self.mixer(self.norm(x))


class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = torch.nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


class Backbone(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = torch.nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = torch.nn.ModuleList(Block(c) for _ in range(c.num_hidden_layers))
        self.norm_f = RMSNorm(c.hidden_size, c.layer_norm_epsilon)


class DemoMamba(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.backbone = Backbone(c)

    def forward(self, ids):
        x = self.backbone.embeddings(ids)
        for layer in self.backbone.layers:
            x = layer(x)
        return self.backbone.norm_f(x) @ self.backbone.embeddings.weight.T   # tied head


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fortunes", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--vocab", type=int, default=4096)
    a = ap.parse_args()
    torch.manual_seed(0)
    random.seed(0)
    dev = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True

    files = read_fortunes(a.fortunes)
    docs = [f for items in files.values() for f in items]
    random.Random(0).shuffle(docs)
    n_test = len(docs) // 20
    test_docs, train_docs = docs[:n_test], docs[n_test:]
    print(f"fortunes: {len(files)} files, {len(docs)} fortunes, {sum(map(len, docs))} chars", flush=True)

    tok = train_tokenizer(train_docs, a.vocab)
    model_dir = os.path.join(a.out, "model")
    os.makedirs(model_dir, exist_ok=True)
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    json.dump(tokenizer_cases(tok, test_docs), open(os.path.join(a.out, "tokenizer_cases.json"), "w"),
              ensure_ascii=False, indent=0)
    eot = tok.token_to_id(EOT)

    def stream(ds):
        ids = []
        for d in ds:
            ids += tok.encode(d).ids + [eot]
        return torch.tensor(ids, dtype=torch.long)

    train_ids, test_ids = stream(train_docs).to(dev), stream(test_docs).to(dev)
    print(f"tokens: train {train_ids.numel()}, test {test_ids.numel()}", flush=True)

    cfg = MambaConfig(vocab_size=tok.get_vocab_size(), hidden_size=256, state_size=16, num_hidden_layers=4,
                      expand=2, conv_kernel=4, time_step_rank="auto", use_bias=False, use_conv_bias=True,
                      tie_word_embeddings=True, residual_in_fp32=True, layer_norm_epsilon=1e-5,
                      pad_token_id=tok.token_to_id(PAD), bos_token_id=eot, eos_token_id=eot)
    init = MambaForCausalLM(cfg).state_dict()          # Mamba's own initialisation (A_log, dt bias, ...)
    model = DemoMamba(cfg).to(dev)
    model.load_state_dict({k: v for k, v in init.items() if k != "lm_head.weight"}, strict=True)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params} parameters", flush=True)

    seq, batch = 256, 32
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)

    def loss_on(ids, starts):
        x = torch.stack([ids[s:s + seq] for s in starts])
        y = torch.stack([ids[s + 1:s + seq + 1] for s in starts])
        return F.cross_entropy(model(x).reshape(-1, cfg.vocab_size), y.reshape(-1))

    def evaluate():
        model.eval()
        with torch.no_grad():
            starts = list(range(0, test_ids.numel() - seq - 1, seq))
            losses = [loss_on(test_ids, starts[i:i + batch]).item() for i in range(0, len(starts), batch)]
        model.train()
        return float(np.mean(losses))

    best, best_state, step, t0 = float("inf"), None, 0, time.time()
    while time.time() - t0 < a.seconds:
        frac = (time.time() - t0) / a.seconds
        for g in opt.param_groups:
            g["lr"] = 2e-3 * min(1.0, step / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        starts = torch.randint(0, train_ids.numel() - seq - 1, (batch,)).tolist()
        loss = loss_on(train_ids, starts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 200 == 0:
            val = evaluate()
            print(f"step {step} {time.time() - t0:.0f}s train {loss.item():.3f} test {val:.3f}", flush=True)
            if val < best:
                best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)

    state = {k: v.contiguous().cpu().float() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(model_dir, "model.safetensors"), metadata={"format": "pt"})
    cfg.architectures = ["MambaForCausalLM"]
    cfg.save_pretrained(model_dir)
    json.dump({"corpus": "Debian package fortunes (/usr/share/games/fortunes), fortunes split on '%' lines",
               "files": sorted(files), "split": "shuffled with seed 0, first 5% test", "parameters": params,
               "steps": step, "batch": batch, "sequence": seq, "seconds": a.seconds,
               "test_loss_nats_per_token": best, "test_perplexity": math.exp(best)},
              open(os.path.join(model_dir, "training.json"), "w"), indent=1)

    torch.backends.cuda.matmul.allow_tf32 = False   # references in true float32
    hf = MambaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(dev).eval()
    prompt_text = "The best way to predict the future is"
    ids = torch.tensor([tok.encode(prompt_text).ids], device=dev)
    with torch.no_grad():
        ref_logits = hf(ids, use_cache=False).logits[0].float()
        mine = model.eval()(ids)[0]
        print("training module vs transformers, max |diff| of logits:", (mine - ref_logits).abs().max().item(), flush=True)
        greedy = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, do_sample=False,
                             min_new_tokens=40, pad_token_id=cfg.pad_token_id)
    ref_dir = os.path.join(a.out, "demo_reference")
    os.makedirs(ref_dir, exist_ok=True)
    np.save(os.path.join(ref_dir, "logits.npy"), ref_logits.cpu().numpy().astype(np.float32))
    json.dump({"prompt": prompt_text, "token_ids": ids[0].tolist(), "greedy_ids": greedy[0].tolist(),
               "greedy_text": tok.decode(greedy[0].tolist())}, open(os.path.join(ref_dir, "reference.json"), "w"),
              indent=1)
    print("greedy:", tok.decode(greedy[0].tolist()), flush=True)


if __name__ == "__main__":
    main()
