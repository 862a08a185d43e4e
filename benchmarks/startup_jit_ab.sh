#!/usr/bin/env bash
# A/B of JIT options for one-shot CLI runs, alternated in three rounds: forward of 3 and of 512 tokens (wall seconds),
# generate 128 tokens (tokens/s as the CLI reports it). A: the launcher's defaults; B: C2 thresholds scaled by 0.01 for
# every kernel method; C: B and a blocking compile of the GEMM micro-kernels and packing; D: the scaling and blocking for
# the GEMM's methods only. Needs the checkpoint at /tmp/mamba130m (../shared/bench/mamba_floor.py --write /tmp/mamba130m).
#   benchmarks/startup_jit_ab.sh
cd "$(dirname "$0")/.."
ids512=$(python3 -c "import random; r=random.Random(3); print(','.join(str(r.randrange(50000)) for _ in range(512)))")
K=org.mambalens.engine.kernels
declare -A OPTS
OPTS[A]=""
OPTS[B]="-XX:CompileCommand=quiet -XX:CompileCommand=CompileThresholdScaling,$K.*::*,0.01"
OPTS[D]="-XX:CompileCommand=quiet -XX:CompileCommand=CompileThresholdScaling,$K.MatMul::micro*,0.01 -XX:CompileCommand=CompileThresholdScaling,$K.MatMul::pack,0.01 -XX:CompileCommand=CompileThresholdScaling,$K.MatMul::gemmPanel,0.01 -XX:CompileCommand=BackgroundCompilation,$K.MatMul::micro*,false -XX:CompileCommand=BackgroundCompilation,$K.MatMul::pack,false"
OPTS[C]="-XX:CompileCommand=quiet -XX:CompileCommand=CompileThresholdScaling,$K.*::*,0.01 -XX:CompileCommand=BackgroundCompilation,$K.MatMul::micro*,false -XX:CompileCommand=BackgroundCompilation,$K.MatMul::pack,false"
for round in 1 2 3; do
  for v in A B C D; do
    export MAMBALENS_JAVA_OPTS="${OPTS[$v]}"
    /usr/bin/time -o /tmp/t3 -f "%e" ./mambalens forward --model /tmp/mamba130m --token-ids 5,17,3 --out /tmp/ab.npy >/dev/null 2>&1; f3=$(cat /tmp/t3)
    /usr/bin/time -o /tmp/t512 -f "%e" ./mambalens forward --model /tmp/mamba130m --token-ids "$ids512" --out /tmp/ab.npy >/dev/null 2>&1; f512=$(cat /tmp/t512)
    g=$(./mambalens generate --model /tmp/mamba130m --token-ids 5,17,3 --max-new-tokens 128 --ignore-eos --greedy --print-ids 2>&1 | grep -oE "[0-9.]+ tokens/s" | tail -1)
    echo "round $round $v: forward3 ${f3}s forward512 ${f512}s generate128 $g load=$(cut -d' ' -f1 /proc/loadavg)"
  done
done
