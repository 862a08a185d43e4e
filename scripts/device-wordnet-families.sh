#!/usr/bin/env bash
# Runs on the GPU machine (see ../shared/device/README.md): trains the issue-21 WordNet gloss classifiers of Mamba-2,
# RWKV-4 and Griffin (weights-tools/reference/wordnet_family_classifiers.py), three processes at once on the one GPU,
# each under its own time limit so that one failing or running late loses only its own outputs, and beside them makes
# the random-weight golden fixtures of those classifiers (classifier_fixtures.py, on the CPU). Packs everything, logs
# included, into $OUT/families.tar.gz.part-* (also when a step fails). Takes about 400 s; at most LIMIT + a few.
# Here, before the run:   python3 weights-tools/reference/wordnet_glosses.py       (writes the ignored train split)
# Device command:         bash scripts/device-wordnet-families.sh   (carry: ["data/wordnet-glosses/train.jsonl"]; timeout_s 600)
#                         LM_SECONDS, CLS_SECONDS (each family's LM and classifier training, default 100 and 200) and
#                         LIMIT (each family's whole run, default 440) change the budget.
# Back here:              mkdir -p /tmp/families && cat <files_at>/families.tar.gz.part-* | tar xz -C /tmp/families; then copy
#                         /tmp/families/models/* into models/ and /tmp/families/golden/* into engine/src/test/resources/golden/
#                         (a family whose models/<family>-wordnet/training.json is missing did not finish: leave it out).
set -euo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=4
work=/tmp/families
rm -rf "$work"; mkdir -p "$work"
trap 'tar czf - -C "$work" . | split -b 15m - "$OUT/families.tar.gz.part-"' EXIT      # files come back 16 MiB at most
repo=$PWD
cd weights-tools/reference
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
families=(mamba2 rwkv griffin)
pids=()
for family in "${families[@]}"; do
  timeout "${LIMIT:-440}" python3 wordnet_family_classifiers.py --family "$family" --repo "$repo" --out "$work" \
      --lm-seconds "${LM_SECONDS:-100}" --cls-seconds "${CLS_SECONDS:-200}" > "$work/$family.log" 2>&1 &
  pids+=($!)
done
timeout 300 python3 classifier_fixtures.py --out "$work/golden/classifiers" \
    --only mamba2_cls_f32,mamba2_cls_bf16,rwkv_cls_f32,rwkv_cls_bf16,griffin_cls_f32,griffin_cls_bf16 > "$work/fixtures.log" 2>&1 \
    || echo "classifier fixtures failed (fixtures.log)"
for i in "${!families[@]}"; do
  wait "${pids[$i]}" || echo "${families[$i]} failed or ran out of time (status $?)"
done
for family in "${families[@]}" fixtures; do
  echo "===== $family.log (last lines)"
  tail -n 12 "$work/$family.log"
done
