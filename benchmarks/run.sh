#!/usr/bin/env bash
# Every CPU figure of benchmarks/RESULTS.md in one run, so that the engine and its comparisons are
# measured on the same machine at the same time:
#   benchmarks/run.sh [CHECKPOINT_DIR]        (default /tmp/mamba130m; written if absent)
# Needs ../shared/bench/mamba_floor.py (the numpy floor) and numpy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/find-jdk25.sh"
ckpt=${1:-/tmp/mamba130m}
floor=${MAMBA_FLOOR:-$root/../shared/bench/mamba_floor.py}
out=${BENCH_OUT:-$root/benchmarks/target/results}
mkdir -p "$out"
(cd "$root" && mvn -q -B -DskipTests install >&2)
echo "== machine"; lscpu | grep -E 'Model name|^CPU\(s\)' ; java -version 2>&1 | head -1
echo "== numpy floor (../shared/bench/mamba_floor.py)"
python3 "$floor" --write "$ckpt" | tee "$out/floor.txt"
echo "== numpy / OpenBLAS comparisons"
python3 "$root/benchmarks/numpy_compare.py" --bf16 "$ckpt" "$ckpt-bf16" | tee "$out/numpy.json"
echo "== engine (JMH)"
java --add-modules jdk.incubator.vector -jar "$root/benchmarks/target/benchmarks.jar" \
  "MatMulBenchmark|ScanBenchmark|MambaBenchmark" -p checkpoint="$ckpt,$ckpt-bf16" \
  -rf json -rff "$out/jmh.json" ${JMH_ARGS:-} 2>&1 | grep -E '^(Benchmark|MatMul|Scan|Mamba)'
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
np_ = json.load(open(f"{out}/numpy.json"))
jmh = json.load(open(f"{out}/jmh.json"))
def ms(name, **params):
    for r in jmh:
        if r["benchmark"].endswith(name) and all(r["params"].get(k) == v for k, v in params.items()):
            return r["primaryMetric"]["score"]
floor = open(f"{out}/floor.txt").read().split("decode ")[1].split(" ms")[0]
gemm = ms("MatMulBenchmark.gemm", dtype="F32")
print("\n== summary")
print(f"sgemm 512x768x3072: engine {2*512*768*3072/gemm/1e6:.1f} GFLOP/s, numpy {np_['numpy_sgemm_gflops']:.1f} GFLOP/s "
      f"({2*512*768*3072/gemm/1e6/np_['numpy_sgemm_gflops']:.0%})")
bound = np_["decode_weight_bytes_f32"] / (np_["copy_gbytes_per_s"] * 1e9) * 1e3
for ck in sorted({r["params"]["checkpoint"] for r in jmh if "checkpoint" in r.get("params", {})}):
    d, p = ms("MambaBenchmark.decode", checkpoint=ck), ms("MambaBenchmark.prefill", checkpoint=ck)
    print(f"{ck}: decode {d:.1f} ms/token ({1000/d:.1f} tok/s), prefill 512 tokens {p:.0f} ms ({512000/p:.0f} tok/s)")
    print(f"  prefill against numpy's GEMMs of the same work (layers + the last row's head, "
          f"{np_['numpy_prefill_last_row_s'] * 1e3:.0f} ms): {np_['numpy_prefill_last_row_s'] * 1e3 / p:.2f}x")
print(f"numpy floor decode {floor} ms/token (../shared/bench/mamba_floor.py), numpy with distinct weights "
      f"{np_['numpy_decode_distinct_weights_ms']:.1f} ms/token; F32 bandwidth bound {bound:.1f} ms/token at "
      f"{np_['copy_gbytes_per_s']:.1f} GB/s copy bandwidth")
PY
