# llama.cpp compiled for this machine's CPU. The prebuilt xllamacpp wheel (40-llm.sh) is an AVX2
# build; where the CPU has AVX-512 or AVX-VNNI, the same pinned version compiled from its sdist
# with GGML_NATIVE prefills about 1.6x the tokens per CPU-second (62 against 38-39 on 2 cores,
# bench/results/chat_prefill_native.json) — and prefill of the record is what the first question
# waits for. About 8 minutes on 2 cores, once: a second run finds the native build and does
# nothing. VIDCHAT_LLAMA_NATIVE=0 keeps the prebuilt wheel. A failed build keeps it too (with a
# warning and the build log): the wheel is slower, not wrong.
# Build options: no LLGuidance (needs Rust crates from the network), no BoringSSL (vidchat's
# server listens on loopback over plain HTTP), no prebuilt web UI (a Hugging Face download).
llama_unused=$($PYC "from vidchat.llm.server import llama_build; print(' '.join(sorted(llama_build().unused)))")
if [ -n "$llama_unused" ] && [ "${VIDCHAT_LLAMA_NATIVE:-1}" != 0 ]; then
  echo "llama.cpp: compiling xllamacpp for this CPU (the installed build leaves $llama_unused unused; about 8 min on 2 cores)"
  need_build=()
  command -v cmake >/dev/null || need_build+=(cmake)
  command -v g++ >/dev/null || need_build+=(g++)
  command -v make >/dev/null || need_build+=(make)
  $PYC "import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))" \
    2>/dev/null || need_build+=(python3-dev)
  $PYC "import ensurepip" 2>/dev/null || need_build+=(python3-venv)
  if [ ${#need_build[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_build[@]}" >/dev/null
  fi
  llama_build_dir=$(mktemp -d)
  llama_log="$llama_build_dir/build.log"
  if $PY -m venv "$llama_build_dir/venv" >"$llama_log" 2>&1 \
    && "$llama_build_dir/venv/bin/pip" install -q --disable-pip-version-check \
      setuptools==84.2.1 cython==3.3.1 versioneer==0.29 >>"$llama_log" 2>&1 \
    && CMAKE_ARGS="-DLLAMA_LLGUIDANCE=OFF -DLLAMA_BUILD_BORINGSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF" \
      NPROC="$(nproc)" "$llama_build_dir/venv/bin/pip" wheel -q --disable-pip-version-check \
      --no-deps --no-build-isolation --no-binary xllamacpp xllamacpp==2026.10.11549 \
      -w "$llama_build_dir/wheels" >>"$llama_log" 2>&1; then
    $PIP --no-deps --force-reinstall "$llama_build_dir"/wheels/xllamacpp-*.whl
    rm -rf "$llama_build_dir"
    $PYC "from vidchat.llm.server import llama_build; b = llama_build(); print('llama.cpp now uses:', b.system_info)"
  else
    echo "warning: compiling xllamacpp failed; keeping the prebuilt AVX2 wheel (log: $llama_log)" >&2
    tail -5 "$llama_log" >&2
  fi
fi
