#!/usr/bin/env bash
# Runs the Jazzer fuzz targets in fuzzing mode, one JVM each, and prints executions and executions/s per target.
#   scripts/fuzz.sh                 every target, 10 minutes each
#   scripts/fuzz.sh 60s npy config  these targets (method names), 60 seconds each
# `mvn test` runs the same targets in regression mode on their committed seeds only. A finding is written to the
# target's inputs directory (src/test/resources/<package>/<Class>Inputs/<target>/crash-*): fix the code, commit the
# input, and it is replayed by every `mvn test` from then on. The growing corpus stays in <module>/.cifuzz-corpus.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
. "$root/scripts/find-jdk25.sh"
cd "$root"
duration=${1:-10m}
shift || true
targets=(
  engine:org.mambalens.engine.fuzz.EngineLoadersFuzzTest#safetensorsFile
  engine:org.mambalens.engine.fuzz.EngineLoadersFuzzTest#safetensorsHeader
  engine:org.mambalens.engine.fuzz.EngineLoadersFuzzTest#npy
  engine:org.mambalens.engine.fuzz.EngineLoadersFuzzTest#tokenizer
  engine:org.mambalens.engine.fuzz.EngineLoadersFuzzTest#config
  weights-tools:org.mambalens.weights.PthFuzzTest#pth
  weights-tools:org.mambalens.weights.PthFuzzTest#pickle
  xai:org.mambalens.xai.data.DataFuzzTest#idx
  xai:org.mambalens.xai.data.DataFuzzTest#image
  xai:org.mambalens.xai.data.DataFuzzTest#jsonl
  xai:org.mambalens.xai.data.DataFuzzTest#preprocessorConfig
  cli:org.mambalens.cli.TokenIdsFuzzTest#tokenIds
)
printf '%-20s %14s %10s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  module=${t%%:*} test=${t#*:} method=${t##*#}
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$method"; then continue; fi
  log=$(mktemp)
  if JAZZER_FUZZ=1 JAZZER_MAX_DURATION=$duration JAZZER_INSTRUMENT='org.mambalens.**' \
      mvn -o -B -q -pl "$module" -am test -Dtest="$test" -Dsurefire.failIfNoSpecifiedTests=false >"$log" 2>&1; then
    result=ok
  else
    result="FINDING (log: $log)"
  fi
  done_line=$(grep -a -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  runs=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1/' <<<"$done_line")
  seconds=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\2/' <<<"$done_line")
  rate=$([ -n "$runs" ] && [ "${seconds:-0}" -gt 0 ] && echo $((runs / seconds)) || echo "?")
  printf '%-20s %14s %10s  %s\n' "$method" "${runs:-?}" "$rate" "$result"
  [ "$result" = ok ] && rm -f "$log"
done
