"""Animal photographs for the fidelity suite, from a registry package, pinned and verified.

scikit-image ships one animal (chelsea, a close-up of a cat's face). Debian's
``tuxpaint-stamps-default`` (Tux Paint's stamp collection) ships photographs of whole animals cut
out along their outline (RGBA PNG, transparent around the animal, about 200 px on the long side),
under the GPL-2 (Debian copyright file: ``Files: * / License: GPL-2``, upstream tuxpaint-stamps by
Bill Kendrick and contributors). That outline is what makes them good test material: pasted
into a frame, the animal's own pixels decide its truth box (the bounding box of the opaque
pixels), not a rectangle set by eye.

The set-up (``.ci/setup.d/52-animal-photos.sh``) fetches the pinned .deb with ``apt-get
download``, checks its sha256, unpacks it to a temporary folder and runs ``python -m
vidchat.apps.fidelity.photos install DIR``, which copies the files listed in `ANIMAL_PHOTOS` into
``$VIDCHAT_DATA/photos/tuxpaint-stamps-default/`` after checking each one's sha256 (atomic:
a file is written beside its place and renamed). Only the COCO-80 animal classes are chosen
(bird, dog, horse, sheep, cow, elephant, bear, zebra, giraffe; cat is the chelsea photograph).

    python -m vidchat.apps.fidelity.photos check            # exit 0 when all are installed
    python -m vidchat.apps.fidelity.photos install ROOT     # ROOT: the unpacked .deb
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vidchat.kernel.errors import InputError
from vidchat.kernel.models import data_dir

PACKAGE = "tuxpaint-stamps-default"
VERSION = "2022.06.04-1"
DEB_SHA256 = "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34"
LICENCE = "GPL-2 (Debian copyright of tuxpaint-stamps-default: Files: *; tuxpaint-stamps)"
# Where the photographs lie inside the package.
PACKAGE_ROOT = "usr/share/tuxpaint/stamps"


@dataclass(frozen=True)
class AnimalPhoto:
    """One cut-out animal photograph: its COCO-80 label, path in the package, sha256."""

    label: str
    path: str  # relative to PACKAGE_ROOT
    sha256: str


# name -> photo. The name is the sprite key the generator plans with (stable across versions).
ANIMAL_PHOTOS: dict[str, AnimalPhoto] = {
    "dog": AnimalPhoto("dog", "animals/mammals/dogs/dog.png",
                       "63b3906f5b3cfcb406d8cf99ea0252a84d2d2b60795b5e275c0b4f2b9985b71a"),
    "dingo": AnimalPhoto("dog", "animals/mammals/dogs/dingo.png",
                         "665de674b6adc0b89437cfa4e6635fcce180e4725367592383848d1f3e345484"),
    "horse": AnimalPhoto("horse", "animals/mammals/equines/horse.png",
                         "1c14aee30e0af4984fcfed4ec9b13769b4e16bb0eb49f95ccef65126b424c6fd"),
    "zebra": AnimalPhoto("zebra", "animals/mammals/equines/zebra.png",
                         "f4a1329606b3d77b7064c8c42d3e247f522f1a48f852ef787a963ecf819f0a8c"),
    "sheep": AnimalPhoto("sheep", "animals/mammals/bovines/sheep.png",
                         "170207d37257b4186b4d2311a6a586ae8387c0dff95ce533d272f104a68785c3"),
    "ram": AnimalPhoto("sheep", "animals/mammals/bovines/ram.png",
                       "619f393899b04dc4d29d2d48af83d145caae89a95b357508ff67a065da67179a"),
    "cow": AnimalPhoto("cow", "animals/mammals/bovines/cow.png",
                       "741dccf90e341f2c69f0c9c60489f9ce9191f9c078b04b43233a8a77411491c4"),
    "white-cow": AnimalPhoto("cow", "animals/mammals/bovines/cow_white.png",
                             "0b189be2bb21dc9cccf842bf4cbee78f014fa60d07a5c78a20e54e2b664acdba"),
    "elephant": AnimalPhoto("elephant", "animals/mammals/elephant.png",
                            "c58332e1f4ef1f476ffb0e8a2df86f0b55c589496b3699de26cfeabd231a8a70"),
    "bear": AnimalPhoto("bear", "animals/mammals/bears/bear.png",
                        "aba4c267dac9003ba033fb0e6e7f09ed43b10e38ec625e5c2d6b67196e182c7f"),
    "brown-bear": AnimalPhoto("bear", "animals/mammals/bears/european-bear.png",
                              "bab9ff97e54a0a1961c7411f701f8f156b1d353a5e86cf85c6bc675aea8a32ff"),
    "giraffe": AnimalPhoto("giraffe", "animals/mammals/giraffe.png",
                           "59c918fefc4aa2e2e8218f4b6c341485b88fb582a6880135d215d706e80f8595"),
    "pigeon": AnimalPhoto("bird", "animals/birds/pigeon.png",
                          "acf99a925c3b64ef5403611cedcf411436c6785084fa5b875af7407fd89b858f"),
    "crow": AnimalPhoto("bird", "animals/birds/crow.png",
                        "b717979bede3b46034b3e4d879afa51a1f64b63e16322fea4e2d220bd9139e0c"),
    "duck": AnimalPhoto("bird", "animals/birds/duck.png",
                        "7770d71308241fe7f0a4f99fc2aabe8ac16e4cfff6e37d13e61fab459c8aed33"),
    "seagull": AnimalPhoto("bird", "animals/birds/seagull.png",
                           "09019f68ea1aa7f8550c719a52d24c315787873898ee735f2bbb37fd876ba65f"),
}  # fmt: skip


class PhotosMissing(InputError):
    """The animal photographs are not installed (or one is not the file it should be)."""


def photos_dir() -> Path:
    """Where the set-up installs the photographs: ``$VIDCHAT_DATA/photos/<package>``."""
    return data_dir() / "photos" / PACKAGE


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def photo_path(name: str) -> Path:
    """The installed file of photo `name`; PhotosMissing says how to install it."""
    if name not in ANIMAL_PHOTOS:
        known = ", ".join(ANIMAL_PHOTOS)
        raise InputError(f"unknown animal photo {name!r} (expected one of {known})")
    path = photos_dir() / ANIMAL_PHOTOS[name].path
    if not path.is_file():
        raise PhotosMissing(
            f"animal photo {name!r} not found at {path}: run .ci/setup (52-animal-photos.sh "
            f"installs Debian's {PACKAGE}={VERSION})"
        )
    return path


def missing() -> list[str]:
    """Names of photographs not installed or whose sha256 is wrong ([] when all are right)."""
    out = []
    for name, p in ANIMAL_PHOTOS.items():
        path = photos_dir() / p.path
        if not path.is_file() or _sha256(path) != p.sha256:
            out.append(name)
    return out


def install(root: Path, dest: Path | None = None) -> list[Path]:
    """Copy every listed photograph from `root` (an unpacked ``PACKAGE`` .deb, or its stamps
    folder) into `dest` (default `photos_dir()`), checking each sha256; atomic per file.
    PhotosMissing when a file is absent or differs (nothing half-written is left behind)."""
    dest = dest or photos_dir()
    base = root / PACKAGE_ROOT if (root / PACKAGE_ROOT).is_dir() else root
    written = []
    for name, p in ANIMAL_PHOTOS.items():
        src = base / p.path
        if not src.is_file():
            raise PhotosMissing(f"{src}: not in the unpacked package (photo {name!r})")
        got = _sha256(src)
        if got != p.sha256:
            raise PhotosMissing(
                f"{src}: sha256 {got[:16]}... is not the expected {p.sha256[:16]}... "
                f"(photo {name!r}; expected {PACKAGE}={VERSION})"
            )
        target = dest / p.path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``check`` (exit 1 listing what is missing) or ``install ROOT``."""
    ap = argparse.ArgumentParser(prog="python -m vidchat.apps.fidelity.photos",
                                 description=__doc__.splitlines()[0])  # fmt: skip
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="exit 0 when every photograph is installed and verified")
    ins = sub.add_parser("install", help="copy the photographs from an unpacked .deb")
    ins.add_argument("root", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "check":
        gone = missing()
        if gone:
            print(f"missing or wrong in {photos_dir()}: {', '.join(gone)}", file=sys.stderr)
            return 1
        print(f"{len(ANIMAL_PHOTOS)} animal photos verified in {photos_dir()}")
        return 0
    try:
        written = install(args.root)
    except PhotosMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"installed {len(written)} animal photos into {photos_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
