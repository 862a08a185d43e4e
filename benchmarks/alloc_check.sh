#!/usr/bin/env bash
# Checks that the CPU kernels box no vectors: JMH's allocation profiler (-prof gc) over the bundled models, each
# benchmark's bytes allocated per operation against a budget. A Vector API value that C2 leaves out of line is
# allocated on the heap, and a kernel that outgrows C2's inlining budget runs the API's Java fallback; either shows
# here as megabytes per operation where the budget allows kilobytes (DESIGN §9).
#   benchmarks/alloc_check.sh            (builds benchmarks/target/benchmarks.jar when it is missing; ~1 minute)
#   BENCHMARKS_JAR=OTHER.jar benchmarks/alloc_check.sh      (another build's jar)
#   JMH_JVM_ARGS=-XX:UseAVX=2 benchmarks/alloc_check.sh     (the 256-bit species on an AVX-512 machine)
# Exits 1 and names the benchmark when one allocates more than its budget.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/find-jdk25.sh"
jar=${BENCHMARKS_JAR:-$root/benchmarks/target/benchmarks.jar}
[ -f "$jar" ] || (cd "$root" && mvn -q -B -DskipTests -pl benchmarks -am package >&2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$root"
jmh() {  # jmh NAME ARGS...: one JMH run into $out/NAME.json
  local name=$1; shift
  java --add-modules jdk.incubator.vector -jar "$jar" "$@" -f 1 -prof gc ${JMH_JVM_ARGS:+-jvmArgsAppend "$JMH_JVM_ARGS"} \
    -rf json -rff "$out/$name.json" >"$out/$name.log" 2>&1 || { tail -20 "$out/$name.log" >&2; echo "alloc_check: JMH failed" >&2; exit 1; }
}
jmh timed 'ScanBenchmark|ClassifierBenchmark|DecodeBenchmark' \
  -p checkpoint=models/mamba-fortunes,models/mamba2-wordnet,models/rwkv-wordnet,models/griffin-wordnet -wi 3 -i 2 -w 1s -r 1s
# Single-shot: one explanation an iteration, so enough of them for C2 to have compiled the kernels before measuring.
jmh explain ExplainBenchmark -wi 300 -i 30
python3 - "$out/timed.json" "$out/explain.json" <<'PY'
import json, sys
# Bytes per operation, about twice what the kernels allocate in arrays of their own (measured 2026-11-30). Before the
# fixes of that day the decode steps allocated 2.9-4.9 MB and the explanation ten times its budget.
budgets = {
    ("ScanBenchmark.scan", ""): 64 << 10,
    ("DecodeBenchmark.decode", "models/mamba-fortunes"): 512 << 10,
    ("DecodeBenchmark.decode", "models/mamba2-wordnet"): 512 << 10,
    ("DecodeBenchmark.decode", "models/rwkv-wordnet"): 256 << 10,
    ("DecodeBenchmark.decode", "models/griffin-wordnet"): 512 << 10,
    ("ClassifierBenchmark.classify", "models/vim-fashion"): 4_500_000,
    ("ExplainBenchmark.summariesAndRollout", "models/vim-fashion"): 6_000_000,
}
failed = 0
for run in json.load(open(sys.argv[1])) + json.load(open(sys.argv[2])):
    name = run["benchmark"].rsplit(".", 2)[-2] + "." + run["benchmark"].rsplit(".", 1)[-1]
    params = run.get("params", {})
    key = (name, params.get("checkpoint", params.get("model", "")) if name != "ScanBenchmark.scan" else "")
    allocated = run["secondaryMetrics"]["gc.alloc.rate.norm"]["score"]
    budget = budgets.get(key)
    verdict = "no budget" if budget is None else ("ok" if allocated <= budget else "OVER BUDGET")
    failed += verdict == "OVER BUDGET"
    print(f"{key[0]:<38} {key[1]:<24} {allocated:>14,.0f} B/op   budget {budget or 0:>12,}   {verdict}")
if failed:
    print(f"alloc_check: {failed} benchmark(s) allocate more than their budget: a kernel boxes vectors (DESIGN §9)", file=sys.stderr)
    sys.exit(1)
PY
