#!/usr/bin/env python3
"""The language half of the seed paper's experiments, on real English text: a GPT-NeoX LM trained beside the
demo Mamba LM, then both fine-tuned as topic classifiers of Debian's fortunes.

  python3 text_classifiers.py --fortunes DIR --repo . --out OUT [--lm-seconds 40] [--cls-seconds 40]

Data. The LM corpus is the demo Mamba LM's own (train_demo_lm.py: every fortune file, shuffled with seed 0,
the first 5% held out), with its tokenizer. The topic data are the fortunes of the files in LABELS that
appear in exactly one of them and encode to at most MAX_TOKENS tokens; per label, shuffled with the label's
index as seed, the first 20% are the test split. Both LMs saw the (unlabelled) text of most of them while
learning the language; neither saw a label before fine-tuning, and both saw the same text.

The shipped weights are the trained ones rounded to BF16 (a few MB each); every reference output and the
reported PyTorch accuracy come from those rounded weights, computed in float32.

Writes
  OUT/data/fortunes-topics/{train,test}.jsonl         {"text", "label", "file", "index"} per line
  OUT/models/gptneox-fortunes/                         GPTNeoXForCausalLM (config, safetensors, tokenizer, training.json)
  OUT/models/{mamba,gptneox}-fortunes-topics/          the classifiers, with id2label and training.json (accuracies)
  OUT/golden/trained/gptneox-fortunes/                 logits.npy [L, V] and reference.json (greedy ids) of the LM
  OUT/golden/trained/{mamba,gptneox}-fortunes-topics/  test_logits.npy [N, labels] from the reference modules (F32)
"""
import argparse, json, math, os, random, shutil, time
from collections import Counter
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, GPTNeoXForSequenceClassification, MambaConfig

from sequence_classifiers import MambaForSequenceClassification, last_non_pad
from train_demo_lm import Backbone, read_fortunes

LABELS = ["computers", "food", "law", "politics", "science"]
MAX_TOKENS = 128
PAD, EOT = 1, 0
DEV = "cuda"


def topic_split(files, tok):
    seen = Counter(t for label in LABELS for t in files[label])
    train, test = [], []
    for k, label in enumerate(LABELS):
        rows = [{"text": t, "label": k, "file": label, "index": i} for i, t in enumerate(files[label])
                if seen[t] == 1 and len(tok.encode(t).ids) <= MAX_TOKENS]
        random.Random(k).shuffle(rows)
        n_test = round(0.2 * len(rows))
        test += rows[:n_test]
        train += rows[n_test:]
    return train, test


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def lm_corpus(files, tok):
    docs = [f for items in files.values() for f in items]
    random.Random(0).shuffle(docs)
    n_test = len(docs) // 20

    def stream(ds):
        ids = []
        for d in ds:
            ids += tok.encode(d).ids + [EOT]
        return torch.tensor(ids, dtype=torch.long, device=DEV)
    return stream(docs[n_test:]), stream(docs[:n_test])


def train_lm(model, vocab, train_ids, test_ids, seconds, lr=1e-3, seq=256, batch=32):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)

    def loss_on(ids, starts):
        x = torch.stack([ids[s:s + seq] for s in starts])
        y = torch.stack([ids[s + 1:s + seq + 1] for s in starts])
        return F.cross_entropy(model(x).logits.reshape(-1, vocab), y.reshape(-1))

    def evaluate():
        model.eval()
        with torch.no_grad():
            starts = list(range(0, test_ids.numel() - seq - 1, seq))
            losses = [loss_on(test_ids, starts[i:i + batch]).item() for i in range(0, len(starts), batch)]
        model.train()
        return float(np.mean(losses))

    best, best_state, step, t0 = float("inf"), None, 0, time.time()
    while time.time() - t0 < seconds:
        frac = (time.time() - t0) / seconds
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, step / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        loss = loss_on(train_ids, torch.randint(0, train_ids.numel() - seq - 1, (batch,)).tolist())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 200 == 0:
            val = evaluate()
            print(f"lm step {step} {time.time() - t0:.0f}s train {loss.item():.3f} test {val:.3f}", flush=True)
            if val < best:
                best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is None:                                   # too few steps for a validation: the last state it is
        best = evaluate()
        print(f"lm step {step} {time.time() - t0:.0f}s train {loss.item():.3f} test {best:.3f}", flush=True)
    else:
        model.load_state_dict(best_state)
    return best, step


def padded(rows, tok):
    seqs = [tok.encode(r["text"]).ids for r in rows]
    ids = torch.full((len(seqs), max(map(len, seqs))), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
    return ids.to(DEV), torch.tensor([r["label"] for r in rows], device=DEV)


def train_classifier(name, model, logits_of, train, tok, seconds, lr=1e-4, head_lr=1e-3, batch=32, validate_seconds=None):
    """Fine-tunes every weight (the new score head faster); 10% of the train split (seed 99) picks the best state,
    validated after every epoch, or with validate_seconds every that many seconds and at the deadline, which then
    ends training within an epoch."""
    rows = list(train)
    random.Random(99).shuffle(rows)
    n_val = len(rows) // 10
    val, fit = rows[:n_val], rows[n_val:]
    val_batches = [padded(val[i:i + 128], tok) for i in range(0, len(val), 128)]
    head = [p for n, p in model.named_parameters() if n.startswith("score.")]
    body = [p for n, p in model.named_parameters() if not n.startswith("score.")]
    opt = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": head, "lr": head_lr}], weight_decay=0.05)
    rng = random.Random(5)

    def accuracy():
        model.eval()
        with torch.no_grad():
            right = sum(int((logits_of(ids).argmax(-1) == y).sum()) for ids, y in val_batches)
        model.train()
        return right / len(val)

    best, best_state, step, t0 = -1.0, None, 0, time.time()

    def validate(loss):
        nonlocal best, best_state
        acc = accuracy()
        print(f"{name} step {step} {time.time() - t0:.0f}s loss {loss.item():.3f} val accuracy {acc:.4f}", flush=True)
        if acc > best:
            best, best_state = acc, {k: v.detach().clone() for k, v in model.state_dict().items()}

    deadline = t0 + seconds
    next_validation = t0 + (validate_seconds or 0)
    model.train()
    while time.time() < deadline:
        rng.shuffle(fit)
        for i in range(0, len(fit) - batch + 1, batch):
            if validate_seconds and time.time() >= deadline:
                break
            ids, y = padded(fit[i:i + batch], tok)
            loss = F.cross_entropy(logits_of(ids), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if validate_seconds and time.time() >= next_validation:
                validate(loss)
                next_validation = time.time() + validate_seconds
        if not validate_seconds:
            validate(loss)
    if validate_seconds:
        validate(loss)
    model.load_state_dict(best_state)
    model.eval()
    return best, step


class MambaTopicTrainer(torch.nn.Module):
    """The demo LM's backbone (parallel scan, transformers' parameter names) and the score head, for training."""

    def __init__(self, cfg):
        super().__init__()
        self.backbone = Backbone(cfg)
        self.score = torch.nn.Linear(cfg.hidden_size, cfg.num_labels, bias=False)

    def forward(self, ids):
        x = self.backbone.embeddings(ids)
        for layer in self.backbone.layers:
            x = layer(x)
        h = self.backbone.norm_f(x)
        return self.score(h[torch.arange(ids.shape[0], device=ids.device), last_non_pad(ids, PAD)])


def test_logits(logits_of, test, tok):
    out = []
    with torch.no_grad():
        for i in range(0, len(test), 64):
            ids, _ = padded(test[i:i + 64], tok)
            out.append(logits_of(ids).float().cpu())
    return torch.cat(out).numpy()


def accuracy_of(logits, test):
    return float(np.mean(logits.argmax(-1) == np.array([r["label"] for r in test])))


def label_fields(labels):
    return dict(num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
                pad_token_id=PAD)


def per_label_counts(train, test, labels):
    return {l: [sum(r["label"] == k for r in train), sum(r["label"] == k for r in test)] for k, l in enumerate(labels)}


def ship_weights(state, cfg, d, reference_class):
    """Saves state rounded to BF16 as d/model.safetensors beside cfg's config.json, and returns reference_class
    (sequence_classifiers.py) rebuilt from those rounded weights in float32, on the GPU, in eval mode."""
    os.makedirs(d, exist_ok=True)
    save_file({k: v.contiguous().cpu().to(torch.bfloat16) for k, v in state.items()}, os.path.join(d, "model.safetensors"),
              metadata={"format": "pt"})
    cfg.save_pretrained(d)
    reference = reference_class(cfg)
    reference.load_state_dict({k: v.float() for k, v in load_file(os.path.join(d, "model.safetensors")).items()})
    return reference.to(DEV).eval()


def ship_classifier(d, golden, tokenizer, logits, train, test, labels, about, test_file, fine_tuned_from, steps, seconds,
                    validation_accuracy, accuracy_before_rounding, **more):
    """Writes beside the shipped classifier in d its tokenizer and training.json (`about`, the split, the figures and
    `more`), and golden/<d's name>/test_logits.npy (the reference's float32 logits on the test split) and reference.json."""
    shutil.copy(tokenizer, d)
    acc = accuracy_of(logits, test)
    counts = per_label_counts(train, test, labels)
    json.dump(dict(about, labels=labels, train=len(train), test=len(test), fine_tuned_from=fine_tuned_from, steps=steps,
                   seconds=seconds, validation_accuracy=validation_accuracy, test_accuracy_pytorch=acc,
                   test_accuracy_before_bf16_rounding=accuracy_before_rounding,
                   majority_class_accuracy=max(c[1] for c in counts.values()) / len(test), **more),
              open(os.path.join(d, "training.json"), "w"), indent=1)
    g = os.path.join(golden, os.path.basename(d))
    os.makedirs(g, exist_ok=True)
    np.save(os.path.join(g, "test_logits.npy"), logits.astype(np.float32))
    json.dump({"data": test_file, "texts": len(test), "test_accuracy": acc,
               "transformers_version": __import__("transformers").__version__},
              open(os.path.join(g, "reference.json"), "w"), indent=1)
    print(f"{os.path.basename(d)}: test accuracy {acc:.4f} (before BF16 rounding {accuracy_before_rounding:.4f}), "
          f"validation {validation_accuracy:.4f}", flush=True)


def fine_tune_classifiers(train, test, tok, labels, lms, outs, golden, seconds, about, test_file):
    """Fine-tunes the Mamba LM in lms["mamba"] and the GPT-NeoX LM in lms["gptneox"] as classifiers of `labels`
    (every weight; the best epoch on 10% of `train`), ships them in BF16 to outs[name] with the LM's tokenizer and
    training.json (`about` plus the figures), and writes golden/<dir name>/test_logits.npy from the reference
    modules in float32."""
    torch.backends.cuda.matmul.allow_tf32 = True
    mamba_cfg = MambaConfig.from_pretrained(lms["mamba"], **label_fields(labels))
    mamba_cfg.architectures = ["MambaForSequenceClassification"]
    trainer = MambaTopicTrainer(mamba_cfg).to(DEV)
    missing = trainer.load_state_dict({k: v.float() for k, v in load_file(os.path.join(lms["mamba"], "model.safetensors")).items()}, strict=False)
    assert missing.missing_keys == ["score.weight"] and not missing.unexpected_keys, missing
    mamba_val, mamba_steps = train_classifier("mamba", trainer, trainer, train, tok, seconds)

    neox = GPTNeoXForSequenceClassification.from_pretrained(lms["gptneox"], dtype=torch.float32, **label_fields(labels)).to(DEV)
    neox_val, neox_steps = train_classifier("gptneox", neox, lambda ids: neox(input_ids=ids).logits, train, tok, seconds)

    torch.backends.cuda.matmul.allow_tf32 = False              # references in true float32
    results = {}
    mamba_trained_acc = accuracy_of(test_logits(trainer, test, tok), test)   # before rounding to BF16
    reference = ship_weights(trainer.state_dict(), mamba_cfg, outs["mamba"], MambaForSequenceClassification)
    results["mamba"] = (outs["mamba"], test_logits(reference, test, tok), mamba_val, mamba_steps, mamba_trained_acc)

    neox_trained_acc = accuracy_of(test_logits(lambda ids: neox(input_ids=ids).logits, test, tok), test)
    neox_dir = outs["gptneox"]
    neox.to(torch.bfloat16).save_pretrained(neox_dir, safe_serialization=True)
    neox_ref = GPTNeoXForSequenceClassification.from_pretrained(neox_dir, dtype=torch.float32, attn_implementation="eager").to(DEV).eval()
    results["gptneox"] = (neox_dir, test_logits(lambda ids: neox_ref(input_ids=ids).logits, test, tok), neox_val, neox_steps,
                          neox_trained_acc)

    for name, (d, logits, val, steps, trained_acc) in results.items():
        ship_classifier(d, golden, os.path.join(lms["mamba"], "tokenizer.json"), logits, train, test, labels, about, test_file,
                        "models/mamba-fortunes" if name == "mamba" else "models/gptneox-fortunes", steps, seconds, val, trained_acc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fortunes", required=True)
    ap.add_argument("--repo", default=".")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lm-seconds", type=float, default=40)
    ap.add_argument("--cls-seconds", type=float, default=40)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    demo_dir = os.path.join(a.repo, "models/mamba-fortunes")
    tok = Tokenizer.from_file(os.path.join(demo_dir, "tokenizer.json"))
    files = read_fortunes(a.fortunes)
    train, test = topic_split(files, tok)
    write_jsonl(os.path.join(a.out, "data/fortunes-topics/train.jsonl"), train)
    write_jsonl(os.path.join(a.out, "data/fortunes-topics/test.jsonl"), test)
    models = os.path.join(a.out, "models")
    golden = os.path.join(a.out, "golden/trained")

    # 1. The GPT-NeoX LM on the demo LM's corpus and tokenizer.
    train_ids, test_ids = lm_corpus(files, tok)
    vocab = tok.get_vocab_size()
    lm_cfg = GPTNeoXConfig(vocab_size=vocab, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                           intermediate_size=512, rotary_pct=0.25, use_parallel_residual=True, max_position_embeddings=512,
                           layer_norm_eps=1e-5, tie_word_embeddings=True, hidden_dropout=0.1, attention_dropout=0.1,
                           bos_token_id=EOT, eos_token_id=EOT, pad_token_id=PAD)
    lm = GPTNeoXForCausalLM(lm_cfg).to(DEV)
    params = sum(p.numel() for p in lm.parameters())
    print(f"gpt-neox lm: {params} parameters", flush=True)
    lm_loss, lm_steps = train_lm(lm, vocab, train_ids, test_ids, a.lm_seconds)
    lm_dir = os.path.join(models, "gptneox-fortunes")
    lm.to(torch.bfloat16).save_pretrained(lm_dir, safe_serialization=True)   # shipped in BF16: a few MB
    shutil.copy(os.path.join(demo_dir, "tokenizer.json"), lm_dir)
    demo = json.load(open(os.path.join(demo_dir, "training.json")))
    json.dump({"corpus": demo["corpus"], "split": demo["split"] + " (the demo Mamba LM's corpus and tokenizer)",
               "parameters": params, "steps": lm_steps, "batch": 32, "sequence": 256, "seconds": a.lm_seconds,
               "test_loss_nats_per_token": lm_loss, "test_perplexity": math.exp(lm_loss),
               "mamba_demo_test_loss_nats_per_token": demo["test_loss_nats_per_token"]},
              open(os.path.join(lm_dir, "training.json"), "w"), indent=1)

    # 2. Both LMs fine-tuned as topic classifiers.
    counts = per_label_counts(train, test, LABELS)
    print("topics (train, test):", counts, flush=True)
    fine_tune_classifiers(train, test, tok, LABELS, {"mamba": demo_dir, "gptneox": lm_dir},
                          {"mamba": os.path.join(models, "mamba-fortunes-topics"), "gptneox": os.path.join(models, "gptneox-fortunes-topics")},
                          golden, a.cls_seconds,
                          {"task": "topic of a Debian fortune", "data": "data/fortunes-topics (text_classifiers.py)",
                           "per_label_train_test": counts},
                          "data/fortunes-topics/test.jsonl")

    # 3. The GPT-NeoX LM's golden logits and greedy continuation, as the demo Mamba LM has.
    hf = GPTNeoXForCausalLM.from_pretrained(lm_dir, dtype=torch.float32, attn_implementation="eager").to(DEV).eval()
    prompt = "The best way to predict the future is"
    ids = torch.tensor([tok.encode(prompt).ids], device=DEV)
    with torch.no_grad():
        logits = hf(ids, use_cache=False).logits[0].float()
        greedy = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, min_new_tokens=40,
                             do_sample=False, pad_token_id=PAD)
    g = os.path.join(golden, "gptneox-fortunes")
    os.makedirs(g, exist_ok=True)
    np.save(os.path.join(g, "logits.npy"), logits.cpu().numpy().astype(np.float32))
    json.dump({"prompt": prompt, "token_ids": ids[0].tolist(), "greedy_ids": greedy[0].tolist(),
               "greedy_text": tok.decode(greedy[0].tolist())}, open(os.path.join(g, "reference.json"), "w"), indent=1)
    print("gpt-neox greedy:", tok.decode(greedy[0].tolist()), flush=True)


if __name__ == "__main__":
    main()
