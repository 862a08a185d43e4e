#!/usr/bin/env bash
# Runs on the GPU machine (see ../shared/device/README.md): trains the issue-21 models at once on the one GPU —
# the placed-Fashion-MNIST ViM and ViT (train_fashion_placed.py) and, beside them, the WordNet-gloss Mamba and
# GPT-NeoX classifiers (wordnet_classifiers.py) — with their golden fixtures; packs everything, logs included,
# into $OUT/issue21.tar.gz.part-* (also when a step fails).
# Here, before the run:   mkdir -p .device/fashion-mnist && cp /usr/share/datasets/fashion-mnist/*.gz .device/fashion-mnist/
#                         python3 weights-tools/reference/wordnet_glosses.py       (writes the ignored train split)
# Device command:         bash scripts/device-placed-wordnet.sh   (carry: [".device", "data/wordnet-glosses/train.jsonl"];
#                         FASHION=DIR reads the Fashion-MNIST files from DIR instead of .device/fashion-mnist;
#                         ONLY=images trains the image models alone, with the GPU to themselves: carry [".device/fashion-mnist"])
# The committed models were made this way on 2026-11-30 (log: weights-tools/reference/placed_wordnet_training.log),
# with one difference: the repository and .device together were over the device's 64 MiB per call, so
# Fashion-MNIST's images went as xz (26 MB), the first 15 MB in one call (copied to /tmp/fm there) and the rest in
# the training call, which rebuilt the .gz files in /tmp/fm and ran this script with FASHION=/tmp/fm.
# Back here:              cat <files_at>/issue21.tar.gz.part-* | tar xz -C /tmp/issue21, then copy models/ into models/ and
#                         golden/ into engine/src/test/resources/golden/.
set -euo pipefail
export PYTHONUNBUFFERED=1
work=/tmp/issue21
rm -rf "$work"; mkdir -p "$work"
trap 'tar czf - -C "$work" . | split -b 15m - "$OUT/issue21.tar.gz.part-"' EXIT      # files come back 16 MiB at most
repo=$PWD
cd weights-tools/reference
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
text=
if [ "${ONLY:-}" != images ]; then
  timeout "${TEXT_LIMIT:-330}" python3 wordnet_classifiers.py --repo "$repo" --out "$work" --seconds "${CLS_SECONDS:-90}" \
      > "$work/text.log" 2>&1 &
  text=$!
fi
timeout "${IMAGE_LIMIT:-420}" python3 train_fashion_placed.py --fashion "${FASHION:-$repo/.device/fashion-mnist}" --repo "$repo" --out "$work" \
    --vim-seconds "${VIM_SECONDS:-190}" --vit-seconds "${VIT_SECONDS:-90}" 2>&1 | tee "$work/images.log" || echo "image training failed"
if [ -n "$text" ]; then
  wait "$text" || echo "text training failed"
  cat "$work/text.log"
fi
