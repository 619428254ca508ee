# Speaker diarization (the speakers perceiver): the Resemblyzer GE2E encoder ships inside its
# wheel (pretrained.pt, 17 MB, Apache-2.0). --no-deps: its metadata asks for "webrtcvad" (an
# sdist that needs a compiler) and torch (already installed, CPU); webrtcvad-wheels provides the
# same module prebuilt, librosa its mel spectrogram.
$PYC "import importlib.util as u, sys; sys.exit(u.find_spec('resemblyzer') is None)" || {
  $PIP webrtcvad-wheels==2.0.14.post1 librosa==0.11.0
  $PIP --no-deps Resemblyzer==0.1.4
}
