#!/usr/bin/env bash
# On the GPU machine: ViM-tiny and DeiT-tiny at 224 (random weights) and the bundled demo models,
# Java engine vs PyTorch: logits and images/s on the CPU, same thread count, same run.
# Here, before the run:  ../shared/device/pack-jre.sh && mvn -q -B -DskipTests package \
#                          && cp cli/target/mambalens.jar benchmarks/target/benchmarks.jar .device/
# Device command:        bash scripts/device-vision.sh      (carry: [".device"])
set -euo pipefail
export PYTHONUNBUFFERED=1
tar xJf .device/jre.tar.xz -C /tmp && export JAVA_HOME=/tmp/jre PATH=/tmp/jre/bin:$PATH
for t in ${THREADS:-16 2}; do
  python3 weights-tools/reference/vision_big_check.py --threads "$t" --out "$OUT/vision_t$t.json" \
    --bench "java --add-modules jdk.incubator.vector -jar .device/benchmarks.jar" \
    --java "java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dmambalens.threads=$t -jar .device/mambalens.jar"
done
