#!/usr/bin/env bash
# The full evaluation (10,000 test images, placed Fashion-MNIST by default; vim and vit, raw/rollout/attribution + random) on
# the GPU machine's CPU cores (16; the 2-GPU kind has 32: THREADS=30 there did all 10,000 with the mean fill in 330 s).
# A run longer than one device call resumes from the journal brought back.
# Here, before the run:  mvn -q -B -DskipTests install && cp cli/target/mambalens.jar .device/ \
#                          && mkdir -p .device/fashion && cp /usr/share/datasets/fashion-mnist/t10k-* .device/fashion/
#                        (to resume: cp <files_at>/journal.jsonl .device/)
# Device command:        bash scripts/device-evaluate.sh      (carry: [".device"]); results come back in $OUT
set -uo pipefail
tar xJf .device/jre.tar.xz -C /tmp && export PATH=/tmp/jre/bin:$PATH
out=/tmp/evaluate-${FILL:-mean}
mkdir -p "$out"
[ -f .device/journal.jsonl ] && cp .device/journal.jsonl "$out/"
timeout "${EVAL_SECONDS:-540}" java --add-modules jdk.incubator.vector -Dmambalens.home="$PWD" -jar .device/mambalens.jar \
  evaluate --fashion-mnist .device/fashion --threads "${THREADS:-16}" --fill "${FILL:-mean}" --out "$out" 2>&1 | tr '\r' '\n' | tail -5
cp "$out"/* "$OUT"/
