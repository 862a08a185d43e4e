#!/usr/bin/env bash
# sgemm at mamba-130m's in_proj prefill shape (512 x 768 -> 3,072), engine beside numpy/OpenBLAS, on each vector width
# this machine has: the JVM limited with -XX:UseAVX=N (the preferred species follows) and OpenBLAS told the matching
# core with OPENBLAS_CORETYPE (its DYNAMIC_ARCH build), on 1 and 2 threads, alternated in one run.
#   benchmarks/sgemm_widths.sh [ROUNDS]      (default 3; builds nothing: needs benchmarks/target/benchmarks.jar)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/find-jdk25.sh"
rounds=${1:-3}
jar="$root/benchmarks/target/benchmarks.jar"
flops=$((2 * 512 * 768 * 3072))
# The machine may be shared: each side gives its fastest call and its median, and the ratios use the fastest (the call
# the neighbours disturbed least), with the medians beside them.
numpy() {  # numpy THREADS CORETYPE -> "fastest median" ms of 60 calls
  OPENBLAS_NUM_THREADS=$1 OPENBLAS_CORETYPE=$2 python3 - <<'PY'
import time, numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal((512, 768), dtype=np.float32); w = rng.standard_normal((3072, 768), dtype=np.float32)
for _ in range(5): x @ w.T
ts = []
for _ in range(60):
    t = time.perf_counter(); x @ w.T; ts.append(time.perf_counter() - t)
ts.sort()
print(f"{ts[0] * 1e3:.2f} {ts[30] * 1e3:.2f}")
PY
}
engine() {  # engine THREADS AVX -> "fastest median" ms (JMH sample mode)
  java --add-modules jdk.incubator.vector -jar "$jar" 'MatMulBenchmark.gemm$' -p dtype=F32 -f 1 -wi 3 -w 1s -i 3 -r 2s \
    -bm sample -tu ms -jvmArgsAppend "-XX:UseAVX=$2 -Dmambalens.threads=$1" 2>/dev/null \
    | awk '/gemm:p0.00 / {lo = $(NF-1)} /gemm:p0.50 / {mid = $(NF-1)} END {print lo, mid}'
}
grep -m1 'model name' /proc/cpuinfo; grep -o -w 'avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
printf '%-6s %-8s %-8s %16s %16s %8s\n' round width threads 'engine ms' 'OpenBLAS ms' ratio
printf '%-6s %-8s %-8s %16s %16s %8s\n' '' '' '' 'fastest median' 'fastest median' 
for r in $(seq "$rounds"); do
  for spec in "AVX2 2 Haswell" "AVX-512 3 SkylakeX"; do
    set -- $spec
    for t in 1 2; do
      e=($(engine "$t" "$2")); n=($(numpy "$t" "$3"))
      printf '%-6s %-8s %-8s %7s %8s %7s %8s %8s\n' "$r" "$1" "$t" "${e[0]}" "${e[1]}" "${n[0]}" "${n[1]}" \
        "$(python3 -c "print(f'{${n[0]} / ${e[0]}:.2f}')")"
    done
  done
done
echo "GFLOP/s = $flops / ms / 1e6; ratio = OpenBLAS fastest / engine fastest (>= 0.9 is issue 20's goal)"
