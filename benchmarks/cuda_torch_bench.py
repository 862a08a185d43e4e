"""PyTorch on the same GPU, for the CUDA backend's comparison rows (scripts/device-cuda.sh runs it beside
org.mambalens.benchmarks.CudaBenchmark, same checkpoints, same shapes):
  python3 benchmarks/cuda_torch_bench.py --lm DIR --vim DIR --vit DIR [--family NAME=DIR ...] --out FILE.json
transformers' MambaForCausalLM (eager, F32; without the mamba-ssm kernels it runs its PyTorch scan), the
plain-PyTorch Vision Mamba of weights-tools/reference/vim_torch.py, transformers' ViTForImageClassification
(eager attention), torch's device-to-device copy bandwidth, and for each --family any causal LM through AutoModelForCausalLM (eager
attention, F32; keys family_NAME_torch_...). Medians after a warm-up, CUDA-synchronised.
Every model row is measured in F32 and again with the model cast to bfloat16 (keys ending in _bf16: weights
and activations in BF16, PyTorch's usual half-precision inference), beside MambaLens's BF16-GEMM mode.

Mamba decode also has the two strongest references PyTorch gives without mamba_ssm, both on the --lm weights:
the hand-written decode step of benchmarks/torch_mamba_step.py (static state updated in place) captured as one
CUDA graph (lm_decode_torch_step_graph_tokens_per_s), and the same step through
torch.compile(mode="max-autotune-no-cudagraphs") captured the same way (lm_decode_torch_compiled_graph_tokens_per_s,
with ..._compile_s, the first call's compile and autotune time). The graph is one greedy step: the token id in a
static tensor, the logits out, the argmax written back as the next id, so replays decode with no host work;
tokens/s = 256 replays / their synchronised seconds, median of 5. Each is checked before it is timed: a 16-token
prompt fed one token at a time, its last logits against transformers' lm(prompt).logits[0, -1] (..._logits_rel_err:
max |difference| / max |reference|; F32 fails above 1e-4, BF16 only records it), then the greedy tokens against
lm.generate(do_sample=False) (..._greedy_tokens_equal, "equal/compared": 32 steps in F32, 8 in BF16; any difference
fails the row). A failed check or compile leaves ..._error (..._bf16_error) instead of the speed."""
import argparse, contextlib, json, os, statistics, sys, time
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "weights-tools", "reference"))


def median_seconds(fn, runs):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def for_each_dtype(results, name, measure):
    """measure(dtype, key_suffix) in F32, then in BF16; a BF16 failure is recorded, not fatal."""
    measure(torch.float32, "")
    try:
        measure(torch.bfloat16, "_bf16")
    except Exception as e:  # a module that does not run in bfloat16 leaves its BF16 rows empty, saying why
        results[f"{name}_bf16_error"] = f"{type(e).__name__}: {e}"
        print(f"{name} in bfloat16 failed: {e}", file=sys.stderr)


def put(results, key, value, unit):
    results[key] = value
    print(f"{key:<44} {value:12.1f} {unit}", file=sys.stderr, flush=True)


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lm"), ap.add_argument("--vim"), ap.add_argument("--vit"), ap.add_argument("--out", required=True)
    ap.add_argument("--family", action="append", default=[], help="NAME=DIR, repeatable")
    a = ap.parse_args()
    dev = torch.device("cuda")
    results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    n = 1 << 28
    src, dst = torch.ones(n, device=dev), torch.empty(n, device=dev)
    put(results, "copy_GBps", 2 * 4 * n / median_seconds(lambda: dst.copy_(src), 10) / 1e9, "GB/s")
    del src, dst
    g = torch.Generator().manual_seed(3)
    if a.lm:
        from transformers import MambaForCausalLM
        import transformers
        results["transformers"] = transformers.__version__
        from transformers.models.mamba import modeling_mamba
        results["transformers_mamba_cuda_kernels"] = bool(getattr(modeling_mamba, "is_fast_path_available", False))
        def lm_rows(dtype, suffix):
            lm = MambaForCausalLM.from_pretrained(a.lm, dtype=dtype).to(dev).eval()
            V = lm.config.vocab_size
            for tokens in (512, 2048):
                ids = torch.randint(0, V, (1, tokens), generator=g).to(dev)
                put(results, f"lm_prefill_{tokens}_tokens_per_s{suffix}", tokens / median_seconds(lambda: lm(ids, use_cache=False), 3), "tokens/s")
            prompt = torch.randint(0, V, (1, 16), generator=g).to(dev)
            steps = 64
            s = median_seconds(lambda: lm.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=steps, min_new_tokens=steps, do_sample=False), 3)
            t_prefill = median_seconds(lambda: lm.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=1, min_new_tokens=1, do_sample=False), 3)
            put(results, f"lm_decode_tokens_per_s{suffix}", (steps - 1) / (s - t_prefill), "tokens/s (generate, cache)")
            torch_step_rows(results, lm, prompt, suffix)
        for_each_dtype(results, "lm", lm_rows)
    if a.vim:
        from vim_torch import VisionMamba
        from safetensors.torch import load_file
        c = json.load(open(os.path.join(a.vim, "config.json")))
        def vim_rows(dtype, suffix):
            vim = VisionMamba(c)
            vim.load_state_dict(load_file(os.path.join(a.vim, "model.safetensors")))
            vim = vim.to(device=dev, dtype=dtype).eval()
            for batch in (1, 64):
                x = torch.randn(batch, 3, c["img_size"], c["img_size"], generator=g).to(device=dev, dtype=dtype)
                best = min(median_seconds(lambda: vim(x, parallel=p), 5) for p in (False, True))
                put(results, f"vim_batch{batch}_images_per_s{suffix}", batch / best, "images/s (input on the GPU; faster of sequential / parallel scan)")
                parallel = median_seconds(lambda: vim(x, parallel=True), 5) <= median_seconds(lambda: vim(x), 5)
                host = x.cpu()
                put(results, f"vim_batch{batch}_images_per_s_from_host{suffix}", batch / median_seconds(lambda: vim(host.to(dev), parallel=parallel).cpu(), 5),
                    "images/s (input copied from host memory, logits back)")
        for_each_dtype(results, "vim", vim_rows)
    if a.vit:
        from transformers import ViTForImageClassification
        def vit_rows(dtype, suffix):
            vit = ViTForImageClassification.from_pretrained(a.vit, num_labels=1000, attn_implementation="eager", dtype=dtype).to(dev).eval()
            size = vit.config.image_size
            for batch in (1, 64):
                x = torch.randn(batch, 3, size, size, generator=g).to(device=dev, dtype=dtype)
                put(results, f"vit_batch{batch}_images_per_s{suffix}", batch / median_seconds(lambda: vit(pixel_values=x).logits, 10), "images/s (input on the GPU)")
                host = x.cpu()
                put(results, f"vit_batch{batch}_images_per_s_from_host{suffix}", batch / median_seconds(lambda: vit(pixel_values=host.to(dev)).logits.cpu(), 10),
                    "images/s (input copied from host memory, logits back)")
        for_each_dtype(results, "vit", vit_rows)
    for spec in a.family:
        name, d = spec.split("=", 1)
        try:
            family_rows(results, name, d, dev, g)
        except Exception as e:  # one family that PyTorch cannot run here leaves its rows empty, saying why
            results[f"family_{name}_torch_error"] = f"{type(e).__name__}: {e}"
            print(f"{name}: {e}", file=sys.stderr)
    json.dump(results, open(a.out, "w"), indent=1)


def torch_step_rows(results, lm, prompt, suffix):
    """Mamba decode by the hand-written step (torch_mamba_step.py), eager and torch.compile'd, each captured as one
    CUDA graph, checked against transformers' lm, then timed. A failure of one leaves KEY[_bf16]_error and goes on."""
    strict = suffix == ""                      # F32: logits within 1e-4 and 32 equal greedy tokens; BF16: 8 tokens
    for name, compiled in (("step_graph", False), ("compiled_graph", True)):
        key = f"lm_decode_torch_{name}"
        graph = logits = None
        try:
            from torch_mamba_step import MambaDecodeStep
            step = MambaDecodeStep(lm)
            fn = torch.compile(step.greedy_step, mode="max-autotune-no-cudagraphs", fullgraph=True) if compiled else step.greedy_step
            token = torch.zeros(1, dtype=torch.long, device=prompt.device)
            if compiled:  # the first call compiles and autotunes
                t0 = time.perf_counter()
                fn(token)
                torch.cuda.synchronize()
                put(results, f"{key}_compile_s{suffix}", time.perf_counter() - t0, "s (torch.compile max-autotune-no-cudagraphs, first call)")
            graph, logits = capture_graph(fn, token)
            err, equal, compared = check_step(lm, step, graph, token, logits, prompt, 32 if strict else 8)
            results[f"{key}_logits_rel_err{suffix}"] = err
            results[f"{key}_greedy_tokens_equal{suffix}"] = f"{equal}/{compared}"
            print(f"{key}{suffix}: last prompt logits within {err:.2e} of transformers', greedy tokens {equal}/{compared} equal",
                  file=sys.stderr, flush=True)
            if strict and not err <= 1e-4:
                raise AssertionError(f"logits differ from transformers' by {err:.2e} (relative max), above 1e-4")
            if equal != compared:
                raise AssertionError(f"greedy tokens differ from transformers' generate after {equal} of {compared}")
            steps = 256
            put(results, f"{key}_tokens_per_s{suffix}", steps / median_seconds(lambda: replay(graph, steps), 5),
                "tokens/s (batch 1, one CUDA graph a token, greedy on the GPU)")
        except Exception as e:  # a compile that fails here, or a check that fails, leaves its row empty, saying why
            results[f"{key}{suffix}_error"] = f"{type(e).__name__}: {e}"[:2000]
            print(f"{key}{suffix} failed: {e}", file=sys.stderr, flush=True)
        finally:
            graph = logits = None  # the graph's memory pool goes with it
            torch.cuda.synchronize()
            torch.cuda.empty_cache()


def capture_graph(fn, token):
    """fn(token) captured as one CUDA graph, after warm-up calls on a side stream as the PyTorch docs prescribe.
    Returns the graph and its static logits output (rewritten by each replay)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn(token)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        logits = fn(token)
    return graph, logits


def replay(graph, steps):
    for _ in range(steps):
        graph.replay()


@contextlib.contextmanager
def no_tf32():
    """transformers' reference without TF32 anywhere (cuDNN allows it for its conv1d by default)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def check_step(lm, step, graph, token, logits, prompt, new_tokens):
    """The captured step against transformers: the prompt fed one token at a time from an empty state, its last
    logits against lm(prompt).logits[0, -1]; then new_tokens greedy tokens (each replay writes the argmax into
    token) against lm.generate(prompt, do_sample=False). Returns (max |difference| / max |reference|,
    leading greedy tokens equal, tokens compared)."""
    step.reset()
    for i in range(prompt.shape[1]):
        token.copy_(prompt[0, i:i + 1])
        graph.replay()
    last = logits.clone()                                       # [V]
    ours = torch.empty(new_tokens, dtype=torch.long, device=token.device)
    for i in range(new_tokens):
        ours[i:i + 1].copy_(token)                              # the argmax of the logits just computed
        if i + 1 < new_tokens:
            graph.replay()
    with no_tf32():
        ref = lm(prompt, use_cache=False).logits[0, -1].float()
        theirs = lm.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens,
                             do_sample=False)[0, prompt.shape[1]:]  # shorter only if it stopped at EOS
    err = ((last - ref).abs().max() / ref.abs().max()).item()
    compared = theirs.numel()
    same = (ours[:compared] == theirs).tolist()
    equal = same.index(False) if False in same else compared
    step.reset()
    return err, equal, compared


def family_rows(results, name, d, dev, g):
    """Prefill 512 and decode (generate with its cache) of a causal LM, eager, F32: the rows beside CudaBenchmark's family_NAME_cuda_*."""
    from transformers import AutoModelForCausalLM
    lm = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").to(dev).eval()
    V = lm.config.vocab_size
    ids = torch.randint(0, V, (1, 512), generator=g).to(dev)
    put(results, f"family_{name}_torch_prefill_512_tokens_per_s", 512 / median_seconds(lambda: lm(ids, use_cache=False), 3), "tokens/s")
    prompt = torch.randint(0, V, (1, 16), generator=g).to(dev)
    steps = 64
    gen = lambda n: lm.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n, min_new_tokens=n, do_sample=False)
    put(results, f"family_{name}_torch_decode_tokens_per_s", (steps - 1) / (median_seconds(lambda: gen(steps), 3) - median_seconds(lambda: gen(1), 3)),
        "tokens/s (generate, cache)")


if __name__ == "__main__":
    main()
