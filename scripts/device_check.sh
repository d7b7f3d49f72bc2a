#!/usr/bin/env bash
# The GPU checks of issue 15 in one run, for a machine with a CUDA GPU: the CUDA tests, then the
# bench on CUDA (steps/s per family at every width up to the largest that trains live, the compiled
# chunk bodies, memory). Figures and logs go to $OUT (default /tmp/nll_device).
#
# On a lent GPU machine whose image has torch, numpy, pandas and pytest but not plotly (the bench's
# page-drawing figures need it), first put its wheels in .whl/ here (pure Python, ~10 MB):
#     python -m pip download --no-deps -d .whl plotly==7.1.0 narwhals==2.29.0
# then run this script there with .whl carried along. It installs them into /tmp/site.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/nll_device}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } | tee "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/unit/test_cuda.py tests/unit/test_compiled.py -k cuda \
  2>&1 | tee "$OUT/tests.txt"
tests=${PIPESTATUS[0]}
timeout "${BENCH_TIMEOUT_S:-400}" python3 -m lab --device cuda bench --out "$OUT/bench_cuda.json" >"$OUT/bench.log" 2>&1
bench=$?
tail -n 5 "$OUT/bench.log"
echo "tests exit $tests, bench exit $bench; figures in $OUT/bench_cuda.json"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
