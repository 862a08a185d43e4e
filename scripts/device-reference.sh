#!/usr/bin/env bash
# Runs on the GPU machine (see ../shared/device/README.md): makes the golden fixtures with transformers
# and trains the demo model, then packs everything into $OUT/reference.tar.gz.
# Here, before the run:   mkdir -p .device && cp -rL /usr/share/games/fortunes .device/fortunes
# Device command:         bash scripts/device-reference.sh          (carry: [".device"])
# Back here:              tar xzf <files_at>/reference.tar.gz -C /tmp/ref ; scripts/install-reference.sh /tmp/ref
set -euo pipefail
export PYTHONUNBUFFERED=1
work=/tmp/reference
rm -rf "$work"; mkdir -p "$work"
python3 weights-tools/reference/mamba_fixtures.py --out "$work/fixtures" 2>&1 | tee "$work/fixtures.log"
python3 weights-tools/reference/train_demo_lm.py --fortunes .device/fortunes --out "$work/demo" \
    --seconds "${TRAIN_SECONDS:-200}" 2>&1 | tee "$work/train.log"
tar czf "$OUT/reference.tar.gz" -C "$work" .
