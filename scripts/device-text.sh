#!/usr/bin/env bash
# Runs on the GPU machine (see ../shared/device/README.md): the text classifiers' golden fixtures, GPT-NeoX's
# autograd gradients, then the GPT-NeoX LM and both topic classifiers trained on Debian's fortunes; packs
# everything into $OUT/text.tar.gz.part-* (also when a step fails, with the logs).
# Here, before the run:   mkdir -p .device && cp -rL /usr/share/games/fortunes .device/fortunes
# Device command:         bash scripts/device-text.sh          (carry: [".device"])
# Back here:              cat <files_at>/text.tar.gz.part-* | tar xz -C /tmp/text, then copy models/, data/ and golden/
#                         (golden/ -> engine/src/test/resources/golden/) into the repository.
set -euo pipefail
export PYTHONUNBUFFERED=1
work=/tmp/text
rm -rf "$work"; mkdir -p "$work"
trap 'tar czf - -C "$work" . | split -b 15m - "$OUT/text.tar.gz.part-"' EXIT      # files come back 16 MiB at most
ref=weights-tools/reference
golden=engine/src/test/resources/golden
(cd $ref && python3 classifier_fixtures.py --out "$work/golden/classifiers") 2>&1 | tee "$work/classifiers.log"
python3 $ref/gradient_fixtures.py --repo . --only gptneox --out "$work/gradients" 2>&1 | tee "$work/gradients.log"
(cd $ref && python3 text_classifiers.py --fortunes "$OLDPWD/.device/fortunes" --repo "$OLDPWD" --out "$work" \
    --lm-seconds "${LM_SECONDS:-40}" --cls-seconds "${CLS_SECONDS:-40}") 2>&1 | tee "$work/train.log"
