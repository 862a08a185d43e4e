#!/usr/bin/env bash
# On the GPU machine's CPU, same run: the explainability core (every layer's hidden-attention summary and
# the rollout) in the Java engine (JMH ExplainBenchmark) and the naive PyTorch way (benchmarks/xai_naive_torch.py),
# for ViM-tiny 224 (random weights) and a 1,024-token prompt at the mamba-130m config (random weights).
# Here, before the run:  ../shared/device/pack-jre.sh (once) && mvn -q -B -DskipTests install \
#                          && cp benchmarks/target/benchmarks.jar ../shared/bench/mamba_floor.py .device/
# Device command:        bash scripts/device-xai.sh      (carry: [".device"])
set -euo pipefail
export PYTHONUNBUFFERED=1
tar xJf .device/jre.tar.xz -C /tmp && export PATH=/tmp/jre/bin:$PATH
python3 benchmarks/make_vision_checkpoints.py /tmp/vision
python3 .device/mamba_floor.py --write /tmp/mamba130m > /dev/null
threads=${THREADS:-16}
lscpu | grep -E 'Model name|^CPU\(s\)'
java --add-modules jdk.incubator.vector -jar .device/benchmarks.jar ExplainBenchmark -wi 1 -i 3 \
  -p model=/tmp/vision/vim-tiny-224,/tmp/mamba130m -p tokens=1024 -jvmArgsAppend "-Dmambalens.threads=$threads" \
  -rf json -rff "$OUT/xai_java.json" 2>&1 | grep -E '^(Benchmark|Explain)'
python3 benchmarks/xai_naive_torch.py --vim /tmp/vision/vim-tiny-224 --lm /tmp/mamba130m --tokens 1024 --lm-layers 2 \
  --threads "$threads" --out "$OUT/xai_torch.json"
