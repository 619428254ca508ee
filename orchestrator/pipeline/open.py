"""Open what a user names: a saved record (``record.json``) or a video (textualized first).

`open_context` is ``vidchat.open``; the CLI commands, the evaluation harness and the instruction
data all read their input through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vidchat.kernel.errors import InputError
from vidchat.kernel.record import VideoContext
from vidchat.pipeline.core import textualize

if TYPE_CHECKING:
    from collections.abc import Iterable

    from vidchat.pipeline.events import OnEvent
    from vidchat.pipeline.profiles import Profile

__all__ = ["open_context"]


def open_context(
    target: str | Path,
    profile: str | Profile | None = None,
    progress: bool = True,
    *,
    on_event: OnEvent | Iterable[OnEvent] | None = None,
) -> VideoContext:
    """A saved record (``*.json``) or a video, textualized with `profile` (through the cache;
    `on_event` receives its progress events).

    This is ``vidchat.open``: every command that takes "a video or a record" reads it here.
    """
    path = Path(target).expanduser()
    if not path.exists():
        raise InputError(f"no such file: {path} (expected a video or a saved record .json)")
    if path.suffix.lower() == ".json":
        from pydantic import ValidationError

        try:
            return VideoContext.load(path)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise InputError(
                f"{path}: not a valid vidchat record ({e.error_count()} problem(s); "
                f"first at {where}: {first['msg']})"
            ) from None
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(str(e)) from None
    return textualize(path, profile=profile, progress=progress, on_event=on_event)
