"""``vidchat serve``: the web app (see `orchestrator.webapp`) on loopback by default::

vidchat serve [--host 127.0.0.1] [--port 7860] [--max-upload-mb 500] [--profile NAME_OR_YAML …]
"""

from __future__ import annotations

import argparse
import sys

from orchestrator.errors import ConfigError

__all__ = ["add_commands", "run_serve"]


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``vidchat serve``: validates the options, then serves until Ctrl-C."""
    from orchestrator.profiles import load_profile
    from orchestrator.webapp import AppConfig, serve

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1..65535, got {args.port}")
    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    for p in args.profile or []:
        load_profile(p)  # a bad profile fails here, in one line, not in the page later
    config = AppConfig(max_upload_mb=args.max_upload_mb, profiles=args.profile or [])
    print(f"vidchat: serving on http://{args.host}:{args.port}/ (Ctrl-C to stop)", file=sys.stderr)
    serve(args.host, args.port, config)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``serve`` to the ``vidchat`` command line."""
    s = sub.add_parser("serve", help="chat with videos in the browser (a local web app)")
    s.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default loopback; 0.0.0.0 exposes it to the network)",
    )
    s.add_argument("--port", type=int, default=7860)
    s.add_argument("--max-upload-mb", type=float, default=500.0, help="largest accepted upload")
    s.add_argument(
        "--profile",
        action="append",
        help="profile offered in the page (repeatable; default: the built-ins)",
    )
    s.set_defaults(func=run_serve)
