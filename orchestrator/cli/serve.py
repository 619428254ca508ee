"""``vidchat serve``: the web app (see `vidchat.apps.webapp`) on loopback by default::

vidchat serve [--host 127.0.0.1] [--port 7860] [--max-upload-mb 500] [--profile NAME_OR_YAML …]
              [--llm local --llm lab=http://10.0.0.5:8000/v1@qwen …] [--allowed-host NAME …]
              [--max-duration-min 60] [--max-megapixels 8.3]

The operator decides what a client may use: profiles and LLMs are offered by name, and a
client sends one of those names, never a URL or a path.
"""

from __future__ import annotations

import argparse
import sys

from vidchat.kernel.errors import ConfigError

__all__ = ["add_commands", "run_serve"]


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``vidchat serve``: validates the options, then serves until Ctrl-C."""
    from vidchat.apps.webapp import LOOPBACK_HOSTS, AppConfig, llm_choices, serve
    from vidchat.pipeline.profiles import load_profile

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1..65535, got {args.port}")
    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    limits: dict[str, float | int] = {}
    if args.max_duration_min is not None:
        if args.max_duration_min <= 0:
            raise ConfigError(f"--max-duration-min must be positive, got {args.max_duration_min}")
        limits["max_duration_s"] = args.max_duration_min * 60
    if args.max_megapixels is not None:
        if args.max_megapixels <= 0:
            raise ConfigError(f"--max-megapixels must be positive, got {args.max_megapixels}")
        limits["max_pixels"] = int(args.max_megapixels * 1e6)
    for p in args.profile or []:
        load_profile(p)  # a bad profile fails here, in one line, not in the page later
    config = AppConfig(
        max_upload_mb=args.max_upload_mb,
        **limits,
        profiles=args.profile or [],
        allowed_hosts=[*LOOPBACK_HOSTS, *(args.allowed_host or [])],
    )
    if args.llm:
        config.llm_choices = list(args.llm)
    llm_choices(config.llm_choices)  # a bad choice fails here, in one line
    print(f"vidchat: serving on http://{args.host}:{args.port}/ (Ctrl-C to stop)", file=sys.stderr)
    if args.host not in LOOPBACK_HOSTS and not args.allowed_host:
        print("vidchat: note: only requests addressed to localhost/127.0.0.1/::1 are answered; "
              "add the name clients use with --allowed-host NAME", file=sys.stderr)  # fmt: skip
    serve(args.host, args.port, config)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    s.add_argument(
        "--llm",
        action="append",
        metavar="CHOICE",
        help="LLM offered to clients (repeatable; default: local): 'local', 'local:NAME' or "
        "NAME=SPEC for an endpoint or path, e.g. lab=http://10.0.0.5:8000/v1@qwen",
    )
    s.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="Host header accepted besides the loopback names (repeatable), e.g. the name "
        "clients use when --host exposes the server; '*' accepts any (not advised)",
    )
    s.add_argument("--max-duration-min", type=float, default=None,
                   help="longest accepted upload, minutes (default 60)")  # fmt: skip
    s.add_argument("--max-megapixels", type=float, default=None,
                   help="largest accepted frame, megapixels (default: 3840x2160)")  # fmt: skip
    s.set_defaults(func=run_serve)
