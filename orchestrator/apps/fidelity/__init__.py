"""Perception fidelity suite: videos whose facts are known by construction, and a scorer.

- `vidchat.apps.fidelity.truth`: the ground-truth schema (`Truth`, saved beside each video as JSON).
- `vidchat.apps.fidelity.generate`: composes seeded videos with ffmpeg (real photographs as shot
  backgrounds, pedestrians cut from vtest.avi moving along known paths, drawtext on-screen text,
  espeak-ng sentences, music and silence stretches) and writes their `Truth`.
- `vidchat.apps.fidelity.photos`: the cut-out animal photographs (Debian tuxpaint-stamps-default,
  pinned and sha256-checked; installed by `.ci/setup.d/52-animal-photos.sh`) that
  ``generate(..., animals=True)`` draws.
- `vidchat.apps.fidelity.score`: compares any `VideoContext` with a `Truth` (speech WER and timing,
  on-screen text recall/precision, objects count and IDF1, shot cuts P/R/F1, tags top-k, and how
  many facts survive rendering under a token budget).
- `bench.fidelity.run`: ``python -m bench.fidelity.run`` generates a small suite, textualizes it
  with the offline profile, scores it, prints a table and writes bench/results/fidelity.json.
"""

from vidchat.apps.fidelity.truth import Truth

__all__ = ["Truth"]
