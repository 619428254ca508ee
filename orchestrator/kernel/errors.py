"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""

from __future__ import annotations


class VidchatError(Exception):
    """Base of every error vidchat reports to the user as a single line."""

    exit_code = 2


class InputError(VidchatError):
    """The input (a video, a record, a file name) is missing or not what was expected."""


class ConfigError(VidchatError):
    """A profile, option or flag has an unknown key or a bad value."""


class PerceiverSkipped(Exception):
    """Raised by a perceiver that has nothing to do on this video (e.g. ASR on a silent video).

    Not an error: the pipeline records status 'skipped' with the message as the reason.
    """


class PerceiverUnavailable(VidchatError):
    """A perceiver cannot run here (missing package or weights); the message says which."""
