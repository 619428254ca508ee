#!/usr/bin/env bash
# On the lent GPU machine, from the repository root (see bench/embed_gpu.py):
#   bash bench/embed_gpu_device.sh stash          park the carried part(s) of .gpu/ there
#   bash bench/embed_gpu_device.sh run [BUDGET_S] park, check, unpack, install, run
# (EMBED_GPU_ARGS="--device cpu --smoke" tries the whole path on a machine without a GPU)
# Results and the log go to $OUT (the device tool's folder), else bench/results.
set -uo pipefail
mode=${1:-run}
budget=${2:-420}
stash=/tmp/vidchat-gpu-stash
out=${OUT:-bench/results}
mkdir -p "$stash"
for d in .gpu/p*; do
  [ -d "$d" ] || continue
  cp "$d"/part-* "$d"/manifest.json "$stash"/
done
ls -l "$stash"
python3 -m bench.embed_gpu assemble --stash "$stash" --dest /tmp/vidchat-gpu || exit $?
[ "$mode" = run ] || exit 0
root=/tmp/vidchat-gpu/vg
# The wheels the machine lacks (EMBED_GPU_SKIP_WHEELS=1 where they are installed already).
if [ -z "${EMBED_GPU_SKIP_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/vidchat-site "$root"/wheels/*.whl || exit 5
fi
# The package as installed, from links to the repository's folders (no build step needed).
python3 -c "import sys; sys.path.insert(0, '.ci'); import static_checks; static_checks.build_view()" \
  || exit 6
export PYTHONPATH=/tmp/vidchat-site:$PWD/build/package-view:$PWD HF_HUB_OFFLINE=1 \
  PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -m bench.embed_gpu run --root "$root" --out "$out/embed_gpu.json" --budget-s "$budget" \
  ${EMBED_GPU_ARGS:-} \
  2>&1 | tee "$out/embed_gpu_log.txt"
