"""``vidchat mcp``: serve vidchat's video tools to agents over MCP (see `vidchat.apps.mcp_server`)::

vidchat mcp [--profile NAME_OR_YAML] [--llm local|openai:MODEL|URL…]
vidchat mcp --http [--host 127.0.0.1] [--port 8765] [--allow-remote]
"""

from __future__ import annotations

import argparse

from vidchat.apps.mcp_server import DEFAULT_HTTP_PORT

__all__ = ["add_commands", "run_mcp"]


def run_mcp(args: argparse.Namespace) -> int:
    """Handler of ``vidchat mcp``: serves until the client leaves (stdio) or Ctrl-C (HTTP)."""
    from vidchat.apps.mcp_server import serve

    serve(
        args.profile,
        args.llm,
        http=args.http,
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
    )
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``mcp`` to the ``vidchat`` command line."""
    m = sub.add_parser("mcp", help="serve vidchat's tools to agents over MCP (stdio or HTTP)")
    m.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    m.add_argument("--host", default="127.0.0.1", help="HTTP address (default loopback)")
    m.add_argument("--port", type=int, default=DEFAULT_HTTP_PORT, help="HTTP port")
    m.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    m.add_argument("--profile", help="default profile for videos (offline, full, or a YAML path)")
    m.add_argument(
        "--llm",
        help="which LLM answers `ask`: local, openai:MODEL, openai-compatible:URL[@MODEL], …",
    )
    m.set_defaults(func=run_mcp)
