#!/usr/bin/env python3
"""The WordNet gloss classifiers of the families transformers has no sequence-classification class for (issue 21):
Mamba-2, RWKV-4 and Griffin (RecurrentGemma). Each is a small LM of the demo Mamba LM's size (D = 256, 4 layers) with its
tokenizer, pretrained briefly here on the text in the repository, then fine-tuned as a classifier of the glosses'
lexicographer categories the way wordnet_classifiers.py fine-tunes the Mamba and GPT-NeoX LMs (every weight, the score
head faster, the best state on 10% of the training split), and shipped the same way (BF16, reference logits in float32
from the shipped weights).

  python3 wordnet_family_classifiers.py --family mamba2|rwkv|griffin --repo REPO --out OUT [--lm-seconds 80] [--cls-seconds 220]

Data: REPO/data/wordnet-glosses/{train,test}.jsonl (wordnet_glosses.py makes the train split at use time; the test split
is committed) and REPO/data/fortunes-topics/train.jsonl. The LM learns from the training glosses and the fortunes' training
split (text_classifiers.lm_corpus: shuffled, 5% held out), never from a test text, and sees no label.

Training runs transformers' own modules (Mamba2ForCausalLM, RwkvForCausalLM, RecurrentGemmaForCausalLM, then the classifier
of sequence_classifiers.py over the same backbone), except that RWKV's WKV and the RG-LRU's scan, which transformers
computes position by position, are computed for all positions at once (`parallel_scans`; the same functions, checked
against transformers' at start-up). The references, and so the shipped test logits, run transformers' recurrences
unchanged; the log prints how far the training modules are from them on the shipped weights.

Writes
  OUT/models/<family>-wordnet/                   <Family>ForSequenceClassification: config.json, BF16 model.safetensors,
                                                 tokenizer.json, training.json (accuracies, the LM's figures)
  OUT/golden/trained/<family>-wordnet/           test_logits.npy [5798, 10] (float32) and reference.json
"""
import argparse, contextlib, os
import numpy as np
import torch
import transformers
from tokenizers import Tokenizer
from transformers.models.recurrent_gemma import modeling_recurrent_gemma
from transformers.models.rwkv import modeling_rwkv

from sequence_classifiers import CLASSIFIERS
from text_classifiers import (DEV, EOT, PAD, accuracy_of, label_fields, lm_corpus, ship_classifier, ship_weights,
                              test_logits, train_classifier, train_lm)
from wordnet_classifiers import TEST_FILE, TOKENIZER, about, read_jsonl, read_splits
from wordnet_glosses import LABELS

# family -> (config class, causal LM class, classifier class, config): D = 256 and 4 layers, as models/mamba-fortunes.
FAMILIES = {
    "mamba2": ("Mamba2Config", "Mamba2ForCausalLM", "Mamba2ForSequenceClassification",
               dict(hidden_size=256, num_hidden_layers=4, expand=2, head_dim=64, num_heads=8, n_groups=1, state_size=64,
                    conv_kernel=4, chunk_size=32, use_bias=False, use_conv_bias=True, layer_norm_epsilon=1e-5,
                    residual_in_fp32=True, tie_word_embeddings=True)),
    "rwkv": ("RwkvConfig", "RwkvForCausalLM", "RwkvForSequenceClassification",
             dict(hidden_size=256, num_hidden_layers=4, attention_hidden_size=256, intermediate_size=1024, context_length=1024,
                  layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                  rescale_every=0)),                    # no halving of the stream: no weights rescaled in place at eval()
    "griffin": ("RecurrentGemmaConfig", "RecurrentGemmaForCausalLM", "RecurrentGemmaForSequenceClassification",
                dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=1,
                     lru_width=256, conv1d_width=4, rms_norm_eps=1e-6, tie_word_embeddings=True,
                     attention_window_size=2048)),      # longer than any text: local attention is causal attention here
}
NAMES = {"mamba2": "Mamba-2", "rwkv": "RWKV-4", "griffin": "Griffin"}

WKV_RECURRENCE = getattr(modeling_rwkv, "rwkv_linear_attention", None)                    # what the parallel forms stand in for
RG_LRU_SCAN = getattr(modeling_recurrent_gemma.RecurrentGemmaRglru, "_rnn_scan", None)
PARALLEL_CALLS = {"wkv": 0, "rg_lru": 0}                # how often training took the parallel path


def wkv_parallel(time_decay, time_first, key, value, state=None, return_state=False):
    """transformers' rwkv_linear_attention from an empty state, all positions at once. Per channel, wkv_t is the mean of
    v_0 … v_t weighted by softmax over i of (t − 1 − i)·w + k_i for i < t and u + k_t for i = t (w = −exp(time_decay),
    u = time_first): the numerator and denominator the recurrence carries, with its running maximum as softmax's."""
    if state is not None or return_state:
        return WKV_RECURRENCE(time_decay, time_first, key, value, state=state, return_state=return_state)
    PARALLEL_CALLS["wkv"] += 1
    L = key.shape[1]
    t = torch.arange(L, device=key.device)
    k = key.float().transpose(1, 2)                                             # [B, A, L]
    gap = (t[:, None] - 1 - t[None, :]).float()                                 # [L(t), L(i)]: t − 1 − i
    scores = gap * -torch.exp(time_decay.float())[:, None, None] + k[:, :, None, :]      # [B, A, t, i]
    scores = torch.where(torch.eye(L, dtype=torch.bool, device=key.device), (time_first.float()[:, None] + k)[..., None], scores)
    scores = scores.masked_fill(t[None, :] > t[:, None], float("-inf"))
    out = torch.einsum("bati,bia->bta", torch.softmax(scores, -1), value.float())
    return out.to(key.dtype), None


def segment_sums(x):
    """x [..., L] -> [..., L(t), L(j)]: Σ_{k=j+1..t} x_k where j ≤ t, −inf where j > t; summed, not differenced, so a long
    run of large terms loses nothing."""
    L = x.shape[-1]
    terms = x[..., :, None].expand(*x.shape, L)                                 # [..., k, j] = x_k
    terms = terms.masked_fill(~torch.tril(torch.ones(L, L, dtype=torch.bool, device=x.device), -1), 0)
    sums = torch.cumsum(terms, dim=-2)                                          # over k ≤ t
    return sums.masked_fill(~torch.tril(torch.ones(L, L, dtype=torch.bool, device=x.device)), float("-inf"))


def rg_lru_scan_parallel(self, hidden_states, recurrent_gate, reset, recurrent_states, *rest, **options):
    """transformers' RecurrentGemmaRglru._rnn_scan from an empty state (a reset at position 0), all positions at once:
    h_t = Σ_{j≤t} (Π_{k=j+1..t} a_k)·x_j, the products as exponentials of sums of log a, in float32 as transformers'."""
    if recurrent_states is not None or hidden_states.shape[1] == 1:
        return RG_LRU_SCAN(self, hidden_states, recurrent_gate, reset, recurrent_states, *rest, **options)
    PARALLEL_CALLS["rg_lru"] += 1
    log_a = torch.log(recurrent_gate.float().clamp_min(1e-30)).transpose(1, 2)        # [B, W, L]; a_0 never enters
    h = torch.einsum("bwtj,bjw->btw", torch.exp(segment_sums(log_a)), hidden_states.float())
    return h.type(hidden_states.dtype), h[:, -1]


@contextlib.contextmanager
def parallel_scans():
    """Inside: RWKV's WKV and the RG-LRU's scan for all positions at once (the references run outside)."""
    modeling_rwkv.rwkv_linear_attention = wkv_parallel
    modeling_recurrent_gemma.RecurrentGemmaRglru._rnn_scan = rg_lru_scan_parallel
    try:
        yield
    finally:
        modeling_rwkv.rwkv_linear_attention = WKV_RECURRENCE
        modeling_recurrent_gemma.RecurrentGemmaRglru._rnn_scan = RG_LRU_SCAN


def parallel_scans_agree():
    """Whether both parallel forms give transformers' recurrences on random inputs (else training runs the recurrences)."""
    try:
        g = torch.Generator().manual_seed(0)
        B, L, A = 3, 41, 16
        decay, first = torch.randn(A, generator=g).to(DEV), torch.randn(A, generator=g).to(DEV)
        key, value = torch.randn(B, L, A, generator=g).to(DEV), torch.randn(B, L, A, generator=g).to(DEV)
        expected = WKV_RECURRENCE(decay, first, key, value)[0]
        wkv_error = float((wkv_parallel(decay, first, key, value)[0] - expected).abs().max() / expected.abs().max())
        x = torch.randn(B, L, A, generator=g).to(DEV)
        a = torch.sigmoid(torch.randn(B, L, A, generator=g) + 2).to(DEV)
        reset = (torch.arange(L) == 0)[None, :, None].expand(B, L, 1).to(DEV)
        expected = RG_LRU_SCAN(None, x, a, reset, None)[0]
        lru_error = float((rg_lru_scan_parallel(None, x, a, reset, None)[0] - expected).abs().max() / expected.abs().max())
    except Exception as e:                                   # transformers' recurrences are not what this script knows
        print(f"parallel scans not checked ({e!r}): training runs transformers' recurrences", flush=True)
        return False
    PARALLEL_CALLS.update(wkv=0, rg_lru=0)
    agree = wkv_error < 1e-4 and lru_error < 1e-4
    print(f"parallel scans vs transformers' recurrences: WKV {wkv_error:.1e}, RG-LRU {lru_error:.1e}"
          + ("" if agree else ": they differ, so training runs the recurrences"), flush=True)
    return agree


def family_config(family, vocab, **more):
    config_class, _, _, spec = FAMILIES[family]
    fields = dict(vocab_size=vocab, bos_token_id=EOT, eos_token_id=EOT, pad_token_id=PAD,
                  use_cache=False,                      # no cache in training: Griffin's cached keys and values carry no gradient
                  **spec)
    fields.update(more)
    return getattr(transformers, config_class)(**fields)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", required=True, choices=list(FAMILIES))
    ap.add_argument("--repo", default=".")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lm-seconds", type=float, default=80)
    ap.add_argument("--cls-seconds", type=float, default=220)
    ap.add_argument("--lr", type=float, default=3e-4, help="the backbone's learning rate in fine-tuning (the score's: 1e-3)")
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    family, name = a.family, NAMES[a.family]
    _, lm_class, classifier_name, _ = FAMILIES[family]
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    train, test = read_splits(a.repo)
    tok = Tokenizer.from_file(os.path.join(a.repo, TOKENIZER))
    vocab = tok.get_vocab_size()
    fortunes = read_jsonl(os.path.join(a.repo, "data/fortunes-topics/train.jsonl"))
    train_ids, test_ids = lm_corpus({"wordnet-glosses": [r["text"] for r in train], "fortunes-topics": [r["text"] for r in fortunes]}, tok)
    print(f"{name} LM corpus: {train_ids.numel()} training, {test_ids.numel()} held-out tokens", flush=True)
    training_scans = parallel_scans if parallel_scans_agree() else contextlib.nullcontext

    with training_scans():
        # 1. The language model, briefly.
        lm = getattr(transformers, lm_class)(family_config(family, vocab)).to(DEV)
        assert modeling_rwkv.rwkv_cuda_kernel is None, "RWKV must run the WKV in PyTorch"
        lm_parameters = sum(p.numel() for p in lm.parameters())
        print(f"{name} LM: {lm_parameters} parameters", flush=True)
        lm_loss, lm_steps = train_lm(lm, vocab, train_ids, test_ids, a.lm_seconds, seq=64, batch=128)
        print(f"{name} LM: {lm_steps} steps, held-out loss {lm_loss:.3f} nats/token; parallel calls {PARALLEL_CALLS}", flush=True)

        # 2. Its backbone under a fresh score head, fine-tuned as the classifier.
        cfg = family_config(family, vocab, **label_fields(LABELS))
        cfg.architectures = [classifier_name]
        classifier_class = CLASSIFIERS[classifier_name]
        model = classifier_class(cfg).to(DEV)
        prefix = classifier_class.prefix + "."
        loaded = model.load_state_dict({k: v for k, v in lm.state_dict().items() if k.startswith(prefix)}, strict=False)
        assert loaded.missing_keys == ["score.weight"] and not loaded.unexpected_keys, loaded
        del lm
        val, steps = train_classifier(family, model, model, train, tok, a.cls_seconds, lr=a.lr, batch=a.batch, validate_seconds=20)
        trained_acc = accuracy_of(test_logits(model, test, tok), test)

    # 3. Shipped in BF16; the reference (transformers' recurrences) from the shipped weights gives the golden logits.
    torch.backends.cuda.matmul.allow_tf32 = False              # references in true float32
    d = os.path.join(a.out, "models", f"{family}-wordnet")
    reference = ship_weights(model.state_dict(), cfg, d, classifier_class)
    logits = test_logits(reference, test, tok)
    model.load_state_dict(reference.state_dict())
    with training_scans():
        trained_logits = test_logits(model, test, tok)
    gap = float(np.abs(trained_logits - logits).max() / np.abs(logits).max())
    print(f"{name}: the training module on the shipped weights is {gap:.2e} (relative to the largest logit) from the reference, "
          f"accuracy {accuracy_of(trained_logits, test):.4f} against the reference's {accuracy_of(logits, test):.4f}", flush=True)
    ship_classifier(d, os.path.join(a.out, "golden/trained"), os.path.join(a.repo, TOKENIZER), logits, train, test, LABELS,
                    about(train, test), TEST_FILE, f"the {name} LM trained by this script (language_model)",
                    steps, a.cls_seconds, val, trained_acc, parameters=sum(p.numel() for p in model.parameters()),
                    learning_rates={"backbone": a.lr, "score": 1e-3}, batch=a.batch,
                    training_module_vs_reference_relative_error=gap,
                    language_model={"corpus": "the training glosses of data/wordnet-glosses and data/fortunes-topics/train.jsonl "
                                              "(text_classifiers.lm_corpus: shuffled with seed 0, 5% held out)",
                                    "parameters": lm_parameters, "steps": lm_steps, "batch": 128, "sequence": 64,
                                    "seconds": a.lm_seconds, "test_loss_nats_per_token": lm_loss})


if __name__ == "__main__":
    main()
