#!/usr/bin/env bash
# On the GPU machine: the mamba-130m configuration with random weights (too big to commit) made by
# transformers there, then the Java engine's CPU forward and greedy decode compared with it.
# Here, before the run:
#   ../shared/device/pack-jre.sh && mvn -q -B -DskipTests package && cp cli/target/mambalens.jar .device/
# Device command: bash scripts/device-mamba130m.sh      (carry: [".device"])
set -euo pipefail
export PYTHONUNBUFFERED=1
tar xJf .device/jre.tar.xz -C /tmp && export JAVA_HOME=/tmp/jre PATH=/tmp/jre/bin:$PATH
python3 weights-tools/reference/mamba_fixtures.py --out /tmp/big --big --only mamba130m --f64
python3 weights-tools/reference/compare_engine.py /tmp/big/mamba130m -- \
  java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -jar .device/mambalens.jar | tee "$OUT/mamba130m.json"
