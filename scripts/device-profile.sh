#!/usr/bin/env bash
# On the GPU machine: each kernel of a prefill or of a few decode steps timed by Nsight Compute (ncu), one at a time,
# so a replayed step or a prefill shows which kernels its time goes to. Graph nodes are timed one by one.
# Prepare here with `bash scripts/device-cuda.sh --prepare`, then run there with the same carry:
#   bash scripts/device-profile.sh [--detail REGEX] NAME=DIR:PHASE:TOKENS[:STEPS[:bf16]] ...
# where DIR is a language model (mamba130m, or lm/FAMILY for benchmarks/make_family_checkpoints.py's checkpoints, made
# here under /tmp), PHASE prefill, decode or batch (TOKENS sequences stepped together; see benchmarks' KernelProfile). For
# each it writes $OUT/NAME.csv (ncu's raw rows) and prints a table: every kernel's total and mean microseconds, per step
# for decode and batch.
# ncu's times are of each kernel alone, caches kept (--cache-control none), at the base clocks ncu sets, with no overlap
# between launches: a replayed step takes less than their sum. With --detail REGEX, the first six launches of kernels
# whose names match (six in all, whichever kernels they are) are profiled instead with ncu's speed-of-light, occupancy,
# warp-state, scheduler, memory, pipe and instruction-mix sections, and the stall reasons per issued instruction (which
# WarpStateStats' text leaves out) ($OUT/NAME.txt): why those kernels take the time they do.
# PROFILE_JAVA_OPTIONS, when set, goes to the JVM (e.g. -Dmambalens.cuda.prefetch=false, to profile the path it selects).
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null || true)
[ -n "$ncu" ] || { echo "device-profile: no ncu (Nsight Compute) on this machine" >&2; exit 2; }
tar xJf .device/jre-cuda.tar.xz -C /tmp && export PATH=/tmp/jre/bin:$PATH
mkdir -p /tmp/cp && tar xJf .device/cuda.tar.xz -C /tmp/cp
cp="$(ls -d /tmp/cp/engine /tmp/cp/benchmarks /tmp/cp/lib/* | tr '\n' ':')"
case " $* " in *=mamba130m:*) [ -d /tmp/models/mamba130m ] || python3 .device/mamba_floor.py --write /tmp/models/mamba130m > /dev/null ;; esac
case " $* " in *=lm/*) [ -d /tmp/models/lm ] || python3 benchmarks/make_family_checkpoints.py /tmp/models/lm > /dev/null ;; esac
detail=""
if [ "${1:-}" = --detail ]; then detail=$2; shift 2; fi
stalls=""
for reason in long_scoreboard short_scoreboard wait barrier membar math_pipe_throttle lg_throttle mio_throttle no_instruction \
              dispatch_stall branch_resolving not_selected selected sleeping drain imc_miss tex_throttle misc; do
  stalls="$stalls${stalls:+,}smsp__average_warps_issue_stalled_${reason}_per_issue_active.ratio"
done
for spec in "$@"; do
  name=${spec%%=*}; IFS=: read -r dir phase tokens steps precision <<< "${spec#*=}"
  steps=${steps:-3}
  if [ -n "$detail" ]; then
    "$ncu" --profile-from-start off --graph-profiling node --cache-control none -k "regex:$detail" --launch-count 6 \
      --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
      --section LaunchStats --section ComputeWorkloadAnalysis --section InstructionStats --metrics "$stalls" \
      --print-kernel-base function --log-file "$OUT/$name.txt" \
      java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED ${PROFILE_JAVA_OPTIONS:-} -cp "$cp" org.mambalens.benchmarks.KernelProfile \
      "/tmp/models/$dir" "$phase" "$tokens" "$steps" ${precision:-f32} > "$OUT/$name.log" 2>&1 || tail -5 "$OUT/$name.log"
    continue
  fi
  "$ncu" --profile-from-start off --graph-profiling node --cache-control none --metrics gpu__time_duration.sum \
    --print-kernel-base function --print-units base --csv --log-file "$OUT/$name.csv" \
    java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED ${PROFILE_JAVA_OPTIONS:-} -cp "$cp" org.mambalens.benchmarks.KernelProfile \
    "/tmp/models/$dir" "$phase" "$tokens" "$steps" ${precision:-f32} > "$OUT/$name.log" 2>&1 || { tail -5 "$OUT/$name.log"; continue; }
  python3 - "$OUT/$name.csv" "$name" "$phase" "$steps" <<'PY'
import csv, sys
from collections import OrderedDict
path, name, phase, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = [r for r in csv.reader(l for l in open(path) if l.startswith('"'))]
head, rows = rows[0], rows[1:]
k, v, unit = head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
assert all(r[unit] in ("ns", "nsecond", "nanosecond") for r in rows), "gpu__time_duration not in nanoseconds"
total = OrderedDict()
for r in rows:
    t = float(r[v].replace(",", "")) / 1e3
    n, s = total.get(r[k], (0, 0.0))
    total[r[k]] = (n + 1, s + t)
per = steps if phase in ("decode", "batch") else 1
whole = sum(s for _, s in total.values()) / per
print(f"\n{name}: {len(rows)} kernels, {whole:.1f} us summed" + (f" a step ({steps} steps)" if per > 1 else ""))
print(f"| kernel | launches{' a step' if per > 1 else ''} | us{' a step' if per > 1 else ''} | share | us a launch |")
print("|---|---:|---:|---:|---:|")
for kernel, (n, s) in sorted(total.items(), key=lambda e: -e[1][1]):
    print(f"| {kernel} | {n / per:g} | {s / per:.1f} | {100 * s / per / whole:.0f} % | {s / n:.2f} |")
PY
done
