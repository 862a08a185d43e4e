#!/usr/bin/env bash
# The CUDA backend on the GPU machine: its JUnit tests run unskipped (a skip or a failure fails the run,
# and every activation buffer is poisoned with NaN before each model run), then the benchmark command
# (org.mambalens.benchmarks.CudaBenchmark) beside PyTorch (benchmarks/cuda_torch_bench.py) on the same GPU.
#   Here:    ../shared/device/pack-jre.sh (once), then  scripts/device-cuda.sh --prepare
#   Device:  bash scripts/device-cuda.sh        (carry: [".device"]); results in $OUT
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
if [ "${1:-}" = --prepare ]; then
  . scripts/find-jdk25.sh
  mvn -q -B -DskipTests install
  rm -rf .device/cuda && mkdir -p .device/cuda/lib
  cp -r engine/target/classes .device/cuda/engine
  cp -r benchmarks/target/classes .device/cuda/benchmarks
  cp -r xai/target/classes .device/cuda/xai
  for m in engine xai; do
    (cd $m/target/test-classes && find . -name "*.class" -exec install -D -m 644 {} "$root/.device/cuda/$m-tests/{}" \;)
  done
  # byte-buddy (9 MB, AssertJ needs it for soft assertions only) stays behind: the carried tree must stay under 64 MiB.
  mvn -q -B dependency:copy-dependencies -pl engine -DincludeScope=test -DexcludeGroupIds=org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian -DexcludeArtifactIds=byte-buddy \
    -DoutputDirectory="$root/.device/cuda/lib"
  mvn -q -B dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.1 -DoutputDirectory="$root/.device/cuda"
  cp ../shared/bench/mamba_floor.py .device/
  du -sh .device/cuda .device
  exit 0
fi
export PYTHONUNBUFFERED=1
tar xJf .device/jre.tar.xz -C /tmp && export PATH=/tmp/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
java=(java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED)
cp=".device/cuda/engine:.device/cuda/engine-tests:.device/cuda/xai:.device/cuda/xai-tests:.device/cuda/benchmarks:$(ls .device/cuda/lib/*.jar | tr '\n' ':')"
tests=0
"${java[@]}" -Dmambalens.cuda.required=true -Dmambalens.cuda.poison=true -jar .device/cuda/junit-platform-console-standalone-*.jar execute \
  --class-path "$cp" --select-package org.mambalens.engine.cuda --select-class org.mambalens.engine.model.DeviceTest \
  --select-class org.mambalens.xai.attention.HiddenAttentionCudaTest \
  --details=tree --disable-banner > "$OUT/tests.txt" 2>&1 || tests=$?
grep -E 'tests (successful|failed|skipped|aborted)|containers (failed|skipped|aborted)|✘|MethodSource|=>' "$OUT/tests.txt" | head -60 || true
if ! grep -qE '^\[ +0 tests skipped' "$OUT/tests.txt" || ! grep -qE '^\[ +0 tests aborted' "$OUT/tests.txt" \
   || ! grep -qE '^\[ +0 containers skipped' "$OUT/tests.txt"; then
  echo "device-cuda: some GPU tests were skipped" >&2; tests=1
fi
python3 .device/mamba_floor.py --write /tmp/mamba130m > /dev/null
python3 benchmarks/make_vision_checkpoints.py /tmp/vision
"${java[@]}" -cp "$cp" org.mambalens.benchmarks.CudaBenchmark --lm /tmp/mamba130m --vim /tmp/vision/vim-tiny-224 \
  --vit /tmp/vision/deit-tiny-224 --out "$OUT/cuda_java.json" > /dev/null
python3 benchmarks/cuda_torch_bench.py --lm /tmp/mamba130m --vim /tmp/vision/vim-tiny-224 --vit /tmp/vision/deit-tiny-224 \
  --out "$OUT/cuda_torch.json"
echo "device-cuda: tests exit $tests"
exit $tests
