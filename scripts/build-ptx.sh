#!/usr/bin/env bash
# Compiles the CUDA kernels (engine/src/main/cuda/mambalens.cu) to PTX and stores it as a resource, so that
# the Maven build needs no nvcc. The first line records the source's SHA-256: PtxFreshnessTest fails when
# the source changed and this script was not run. PTX for compute_80 is JIT-compiled by the driver for the
# GPU at hand (Ampere, Ada, Hopper and later).
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
src="$root/engine/src/main/cuda/mambalens.cu"
out="$root/engine/src/main/resources/org/mambalens/engine/cuda/mambalens.ptx"
command -v nvcc >/dev/null || { echo "build-ptx: nvcc not found (install the CUDA toolkit)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
nvcc -arch=compute_80 -ptx -O3 -o "$tmp" "$src"
{
  echo "// source-sha256: $(sha256sum "$src" | cut -d' ' -f1)"
  echo "// built by scripts/build-ptx.sh: nvcc -arch=compute_80 -ptx -O3 ($(nvcc --version | grep -o 'release [0-9.]*'))"
  cat "$tmp"
} > "$out"
echo "wrote $out ($(wc -c < "$out") bytes)"
