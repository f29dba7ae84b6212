#!/usr/bin/env bash
# One prepared run for a fresh machine with an NVIDIA GPU and no internet (about 8 minutes):
#   1. builds PyCUDA from the local bundle .gpu/ (bash .gpu/install.sh -> /tmp/site),
#   2. runs the GPU tests (python -m pytest -m gpu),
#   3. prints the cost model's prediction with measured per-kernel times (--gpu-model),
#   4. runs every benchmark with GPU sizes (python -m benchmarks --gpu),
# and writes everything to OUT (default: $OUT if set, else runs/bench-gpu-<time>):
#   gpu.log (all output), gpu_model.txt, results.json, results.md, img/*.png.
#
# Usage, from the repository root:   bash benchmarks/gpu.sh [OUT] [extra args for benchmarks]
# Prepare .gpu/ beforehand where pip works (it holds the pycuda sdist and its wheels):
#   bash /work/shared/tools/pycuda-bundle.sh .gpu      (the team's shared tools folder)
# Needs on the GPU machine: python3 with numpy, sympy, jinja2, matplotlib, tqdm, torch, pytest
# (snncc itself runs from this checkout through PYTHONPATH; nothing is installed from a registry),
# nvcc and a C++ compiler. Time limits: BUDGET_S (default 480) for the whole script; the tests get
# at most TEST_S (default 150) s; the benchmarks get what is left, in the --quick sizes when that
# is under QUICK_BELOW_S (default 240) s.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
start=$SECONDS
budget=${BUDGET_S:-480}
out=${1:-${OUT:-runs/bench-gpu-$(date +%Y%m%d-%H%M%S)}}
shift || true
mkdir -p "$out"
log="$out/gpu.log"
: >"$log"
say() { echo "[gpu.sh $((SECONDS - start))s] $*" | tee -a "$log"; }
left() { echo $((budget - (SECONDS - start))); }

export PYTHONUNBUFFERED=1
export PYTHONPATH="/tmp/site:$repo${PYTHONPATH:+:$PYTHONPATH}"
export SNNCC_CACHE=${SNNCC_CACHE:-/tmp/snncc-cache}
PY=${PYTHON:-python3}

say "repo $repo, output $out, budget ${budget}s, python $($PY -c 'import sys; print(sys.version.split()[0])')"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true) 2>&1 | tee -a "$log"

# 1. PyCUDA -------------------------------------------------------------------------------------
if $PY -c "import pycuda.driver as d; d.init(); assert d.Device.count() > 0" >/dev/null 2>&1; then
  say "PyCUDA already importable"
elif [ -f .gpu/install.sh ]; then
  say "building PyCUDA from .gpu/ (1-3 minutes)"
  if ! bash .gpu/install.sh >>"$log" 2>&1; then
    say "PyCUDA build failed (see $log); the cuda backend cannot run, stopping"
    exit 1
  fi
  say "PyCUDA ready"
else
  say "no .gpu/ bundle and no PyCUDA: run 'bash /work/shared/tools/pycuda-bundle.sh .gpu' where pip works and copy .gpu/ here"
  exit 1
fi

# 2. GPU tests ----------------------------------------------------------------------------------
test_s=${TEST_S:-150}
say "GPU tests: python -m pytest -m gpu (at most ${test_s}s)"
timeout "$test_s" $PY -m pytest -m gpu -q -p no:cacheprovider tests 2>&1 | tee -a "$log" | tail -n 15
rc=${PIPESTATUS[0]}
case $rc in
  0) say "GPU tests passed" ;;
  5) say "no GPU tests were collected" ;;
  124) say "GPU tests stopped after ${test_s}s" ;;
  *) say "GPU tests FAILED (exit $rc); the benchmarks still run" ;;
esac

# 3. the cost model's prediction with the measured per-kernel times beside it -------------------
say "cost model: python -m benchmarks --gpu-model (at most 120s) -> $out/gpu_model.txt"
timeout 120 $PY -m benchmarks --gpu-model >"$out/gpu_model.txt" 2>&1
rc=$?
cat "$out/gpu_model.txt" >>"$log"
[ "$rc" -eq 0 ] || say "cost model ended with exit $rc (see $out/gpu_model.txt)"

# 4. benchmarks ---------------------------------------------------------------------------------
remaining=$(($(left) - 10))
quick=""
if [ "$remaining" -lt "${QUICK_BELOW_S:-240}" ]; then quick="--quick"; fi
say "benchmarks: python -m benchmarks --gpu $quick (at most ${remaining}s)"
timeout --signal=INT --kill-after=10 "$remaining" $PY -m benchmarks --gpu $quick --out "$out" "$@" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || say "benchmarks ended with exit $rc (results.json holds every finished section)"
say "done in $((SECONDS - start))s: $(ls "$out" | tr '\n' ' ')"
