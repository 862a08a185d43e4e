#!/usr/bin/env bash
# The CUDA backend on the GPU machine: its JUnit tests run unskipped (a skip or a failure fails the run,
# and every activation buffer is poisoned with NaN before each model run), then the benchmark command
# (org.mambalens.benchmarks.CudaBenchmark) beside PyTorch (benchmarks/cuda_torch_bench.py) on the same GPU.
#   Here:    scripts/device-cuda.sh --prepare
#   Device:  bash scripts/device-cuda.sh [--quick|--families|--decode|--prefill] [--no-torch]   (--quick: the Mamba tests and the Mamba LM rows only;
#            --decode: the Mamba decode-step tests and decode rows alone, about a minute;
#            --prefill: the scan's and Mamba's and ViM's golden tests, the scan and prefill rows;
#            --families: the other language families' tests and rows, at their ~130M configs;
#            --no-torch: without the PyTorch rows; carry: [".device/jre-cuda.tar.xz", ".device/cuda.tar.xz", ".device/mamba_floor.py"]);
#            results in $OUT
#   Here, for --quick and --families: scripts/device-cuda.sh --slim first deletes from the working tree the bundled models
#            and recorded results those runs do not read, so that tree and archives fit the device's 64 MiB;
#            `git checkout -- models benchmarks/results 'benchmarks/xai-*'` brings them back.
# The device takes the working tree and the carried files up to 64 MiB in all, so both are packed small: a
# Java runtime of only the modules these runs use (no java.desktop: nothing is drawn there), native code
# stripped, and the class path (our classes, the test classes, and the jars unpacked) as one xz archive.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
if [ "${1:-}" = --slim ]; then     # what --quick and --families never read (all tracked: git restores it)
  for m in gptneox-fortunes gptneox-fortunes-topics gptneox-wordnet rwkv-wordnet griffin-wordnet mamba2-wordnet mamba-wordnet \
           mamba-fortunes-topics vit-placed; do
    rm -rf "models/$m"
  done
  rm -rf benchmarks/results benchmarks/xai-*      # recorded figures and evaluations (about 10 MiB)
  echo "device-cuda: bundled models and recorded results not read by --quick/--families removed; restore them with:"
  echo "  git checkout -- models benchmarks/results 'benchmarks/xai-*'"
  exit 0
fi
if [ "${1:-}" = --prepare ]; then
  . scripts/find-jdk25.sh
  mvn -q -B -DskipTests install
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  "$JAVA_HOME/bin/jlink" --add-modules java.base,jdk.incubator.vector,java.logging,jdk.unsupported --strip-debug --no-header-files \
    --no-man-pages --output "$stage/jre" 2>/dev/null
  strip --strip-unneeded "$stage"/jre/lib/server/libjvm.so "$stage"/jre/lib/*.so
  mkdir -p .device
  XZ_OPT=-9e tar cJf .device/jre-cuda.tar.xz -C "$stage" jre
  mkdir -p "$stage/cp/lib"
  for m in engine xai benchmarks; do cp -r $m/target/classes "$stage/cp/$m"; done
  for m in engine xai; do   # the test classes only: the fixtures are read from the working tree, which travels anyway
    (cd $m/target/test-classes && find . -name "*.class" -exec install -D -m 644 {} "$stage/cp/$m-tests/{}" \;)
  done
  # byte-buddy (9 MB, AssertJ needs it for soft assertions only) stays behind.
  mvn -q -B dependency:copy-dependencies -pl engine -DincludeScope=test -DexcludeGroupIds=org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian -DexcludeArtifactIds=byte-buddy \
    -DoutputDirectory="$stage/jars"
  mvn -q -B dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.1 -DoutputDirectory="$stage/jars"
  for jar in "$stage"/jars/*.jar; do
    name=$(basename "$jar" .jar)
    mkdir -p "$stage/cp/lib/$name" && (cd "$stage/cp/lib/$name" && unzip -q "$jar")
  done
  XZ_OPT=-9e tar cJf .device/cuda.tar.xz -C "$stage/cp" .
  cp ../shared/bench/mamba_floor.py .device/
  ls -la .device/jre-cuda.tar.xz .device/cuda.tar.xz
  tree=$( (git ls-files -z | xargs -0 stat -c %s 2>/dev/null || true) | awk '{s += $1} END {print s}')   # files --slim removed count nothing
  echo "carried in all (tree + these): $(( ( tree + $(cat .device/jre-cuda.tar.xz .device/cuda.tar.xz .device/mamba_floor.py | wc -c) ) / 1048576 )) MiB of 64"
  exit 0
fi
export PYTHONUNBUFFERED=1
tar xJf .device/jre-cuda.tar.xz -C /tmp && export PATH=/tmp/jre/bin:$PATH
mkdir -p /tmp/cp && tar xJf .device/cuda.tar.xz -C /tmp/cp
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
java=(java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED)
# The tests get a time limit of their own (TEST_SECONDS), so that a hang does not spend the whole device call: the JVM
# first prints its threads' stacks into tests.txt (SIGQUIT), then is killed.
tests_java=(timeout -s QUIT -k 10 "${TEST_SECONDS:-360}" "${java[@]}")
cp="$(ls -d /tmp/cp/engine /tmp/cp/engine-tests /tmp/cp/xai /tmp/cp/xai-tests /tmp/cp/benchmarks /tmp/cp/lib/* | tr '\n' ':')"
tests=0
quick=0; torch=1; families_only=0; decode_only=0; prefill_only=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --families) families_only=1 ;;
    --decode) decode_only=1 ;;
    --prefill) prefill_only=1 ;;
    --no-torch) torch=0 ;;
    *) echo "device-cuda: unknown option $arg" >&2; exit 2 ;;
  esac
done
# The JUnit classes or packages selected by the arguments, with a GPU required and activations poisoned, into
# $OUT/tests.txt; the summary printed. A failure sets tests.
gpu_tests() {
  "${tests_java[@]}" -Dmambalens.cuda.required=true -Dmambalens.cuda.poison=true -cp "$cp" org.junit.platform.console.ConsoleLauncher execute \
    "$@" --details=tree --disable-banner > "$OUT/tests.txt" 2>&1 || tests=$?
  grep -E 'tests (successful|failed|skipped|aborted)|✘|=>' "$OUT/tests.txt" | head -40 || true
}
# CudaBenchmark's Mamba LM rows on mamba-130m's config with random weights (plus the arguments, e.g. --decode-only),
# into $OUT/cuda_java.json. A failure sets tests.
mamba_rows() {
  python3 .device/mamba_floor.py --write /tmp/mamba130m > /dev/null
  "${java[@]}" -cp "$cp" org.mambalens.benchmarks.CudaBenchmark --lm /tmp/mamba130m "$@" --out "$OUT/cuda_java.json" > /dev/null || tests=1
}
if [ $decode_only = 1 ]; then
  gpu_tests --select-class org.mambalens.engine.cuda.CudaBatchRowsTest --select-class org.mambalens.engine.model.mamba.MambaGoldenTest \
    --select-class org.mambalens.engine.model.BatchGenerationTest
  mamba_rows --decode-only
  echo "device-cuda --decode: exit $tests"
  exit $tests
fi
if [ $prefill_only = 1 ]; then
  gpu_tests --select-class org.mambalens.engine.cuda.CudaScanTest --select-class org.mambalens.engine.model.mamba.MambaGoldenTest \
    --select-class org.mambalens.engine.model.vim.VimGoldenTest
  mamba_rows --prefill-only
  echo "device-cuda --prefill: exit $tests"
  exit $tests
fi
if [ $quick = 1 ]; then
  gpu_tests --select-package org.mambalens.engine.cuda --select-class org.mambalens.engine.model.mamba.MambaGoldenTest \
    --select-class org.mambalens.engine.model.BatchGenerationTest --select-class org.mambalens.engine.model.vim.VimGoldenTest \
    --select-class org.mambalens.engine.model.vit.ViTGoldenTest
  mamba_rows
  if [ $torch = 1 ]; then timeout 300 python3 benchmarks/cuda_torch_bench.py --lm /tmp/mamba130m --out "$OUT/cuda_torch.json" || tests=1; fi
  echo "device-cuda --quick: exit $tests"
  exit $tests
fi
family_args() {
  python3 benchmarks/make_family_checkpoints.py /tmp/families
  families=()
  for f in mamba2-130m rwkv4-169m pythia-160m recurrentgemma-small; do families+=(--family "$f=/tmp/families/$f"); done
}
if [ $families_only = 1 ]; then
  gpu_tests --select-class org.mambalens.engine.model.mamba2.Mamba2GoldenTest --select-class org.mambalens.engine.model.rwkv.RwkvGoldenTest \
    --select-class org.mambalens.engine.model.griffin.GriffinGoldenTest --select-class org.mambalens.engine.model.gptneox.GptNeoXGoldenTest \
    --select-class org.mambalens.engine.model.ReplayedStepTest
  family_args
  "${java[@]}" -cp "$cp" org.mambalens.benchmarks.CudaBenchmark "${families[@]}" --out "$OUT/cuda_java.json" > /dev/null || tests=1
  if [ $torch = 1 ]; then timeout 300 python3 benchmarks/cuda_torch_bench.py "${families[@]}" --out "$OUT/cuda_torch.json" || tests=1; fi
  echo "device-cuda --families: exit $tests"
  exit $tests
fi
"${tests_java[@]}" -Dmambalens.cuda.required=true -Dmambalens.cuda.poison=true -cp "$cp" org.junit.platform.console.ConsoleLauncher execute \
  --select-package org.mambalens.engine.cuda --select-class org.mambalens.engine.model.DeviceTest \
  --select-class org.mambalens.engine.model.ReplayedStepTest \
  --select-class org.mambalens.engine.model.mamba2.Mamba2GoldenTest --select-class org.mambalens.engine.model.rwkv.RwkvGoldenTest \
  --select-class org.mambalens.engine.model.griffin.GriffinGoldenTest --select-class org.mambalens.engine.model.gptneox.GptNeoXGoldenTest \
  --select-class org.mambalens.engine.model.mamba.MambaGoldenTest --select-class org.mambalens.engine.model.vim.VimGoldenTest \
  --select-class org.mambalens.engine.model.vit.ViTGoldenTest --select-class org.mambalens.engine.model.TextClassifiersTest \
  --select-class org.mambalens.engine.verify.VerificationTest \
  --select-class org.mambalens.xai.attention.HiddenAttentionCudaTest \
  --details=tree --disable-banner > "$OUT/tests.txt" 2>&1 || tests=$?
grep -E 'tests (successful|failed|skipped|aborted)|containers (failed|skipped|aborted)|✘|MethodSource|=>' "$OUT/tests.txt" | head -60 || true
grep -E 'first-run NVRTC compile|second run, from the cache|mambalens: (compiling|NVRTC)' "$OUT/tests.txt" || true   # for RESULTS.md
if ! grep -qE '^\[ +0 tests skipped' "$OUT/tests.txt" || ! grep -qE '^\[ +0 tests aborted' "$OUT/tests.txt" \
   || ! grep -qE '^\[ +0 containers skipped' "$OUT/tests.txt"; then
  echo "device-cuda: some GPU tests were skipped" >&2; tests=1
fi
# The committed reference dumps (verify's fixtures) remade by the committed script: the same tensors.
python3 weights-tools/reference/reference_dumps.py --repo . --out /tmp/dumps > "$OUT/dumps.txt" 2>&1 || tests=1
python3 - <<'PY' || tests=1
import glob, os, sys
import numpy as np
from safetensors.numpy import load_file
worst, n = 0.0, 0
for made in sorted(glob.glob("/tmp/dumps/**/*.safetensors", recursive=True)):
    committed = load_file(os.path.relpath(made, "/tmp/dumps"))
    for k, v in load_file(made).items():
        ref = committed[k].astype(np.float64)
        worst = max(worst, float(np.abs(v.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30)))
    n += 1
print(f"reference_dumps.py remade {n} dumps; largest relative difference from the committed ones: {worst:.2e}")
sys.exit(0 if n > 0 and worst <= 1e-5 else 1)
PY
python3 .device/mamba_floor.py --write /tmp/mamba130m > /dev/null
python3 benchmarks/make_vision_checkpoints.py /tmp/vision
family_args
"${java[@]}" -cp "$cp" org.mambalens.benchmarks.CudaBenchmark --lm /tmp/mamba130m --vim /tmp/vision/vim-tiny-224 \
  --vit /tmp/vision/deit-tiny-224 "${families[@]}" --out "$OUT/cuda_java.json" > /dev/null
if [ $torch = 1 ]; then
  python3 benchmarks/cuda_torch_bench.py --lm /tmp/mamba130m --vim /tmp/vision/vim-tiny-224 --vit /tmp/vision/deit-tiny-224 \
    "${families[@]}" --out "$OUT/cuda_torch.json"
fi
echo "device-cuda: tests exit $tests"
exit $tests
