#!/usr/bin/env bash
# Runs on the GPU machine (see ../shared/device/README.md): makes the golden fixtures with transformers
# and trains the demo model, then packs everything into $OUT/reference.tar.gz.
# Here, before the run:   mkdir -p .device && cp -rL /usr/share/games/fortunes .device/fortunes
# Device command:         bash scripts/device-reference.sh          (carry: [".device"])
# Back here:              tar xzf <files_at>/reference.tar.gz -C /tmp/ref ; cp -r /tmp/ref/golden/* engine/src/test/resources/golden/
#                         (the Mamba fixtures and the demo model are in /tmp/ref/fixtures and /tmp/ref/demo)
set -euo pipefail
export PYTHONUNBUFFERED=1
work=/tmp/reference
rm -rf "$work"; mkdir -p "$work"
python3 weights-tools/reference/mamba_fixtures.py --out "$work/fixtures" 2>&1 | tee "$work/fixtures.log"
for family in gptneox:gptneox_fixtures mamba2:mamba2_fixtures rwkv:rwkv_fixtures griffin:recurrent_gemma_fixtures; do
  python3 "weights-tools/reference/${family#*:}.py" --out "$work/golden/${family%%:*}" 2>&1 | tee -a "$work/fixtures.log"
done
python3 weights-tools/reference/train_demo_lm.py --fortunes .device/fortunes --out "$work/demo" \
    --seconds "${TRAIN_SECONDS:-200}" 2>&1 | tee "$work/train.log"
tar czf "$OUT/reference.tar.gz" -C "$work" .
