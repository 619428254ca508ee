# System tools: ffmpeg/ffprobe, espeak-ng (speech with a known text), Debian's chromium (the web
# app's browser tests drive it through Playwright; no browser download) and a TrueType font for
# on-screen text in the OCR and fidelity test videos (ffmpeg drawtext).
need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
command -v chromium >/dev/null || need_apt+=(chromium chromium-driver)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
