"""``vidchat mcp``'s command line (`vidchat.cli.mcp`): parsing only; serving is the app's
(`vidchat.apps.mcp_server.serve`, tested with a real client in tests/apps/test_mcp.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("mcp")

from vidchat.apps.mcp_server import DEFAULT_HTTP_PORT, serve
from vidchat.cli.main import build_parser, main
from vidchat.cli.mcp import run_mcp
from vidchat.kernel.errors import ConfigError


def test_http_refuses_a_non_loopback_host_without_allow_remote(capsys):
    assert main(["mcp", "--http", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "vidchat: error: --host 0.0.0.0 is not a loopback address" in err
    assert "add --allow-remote" in err and "Traceback" not in err


def test_serve_refuses_a_non_loopback_host_in_the_library_too():
    with pytest.raises(ConfigError, match=r"--host 10\.1\.2\.3 is not a loopback address"):
        serve(http=True, host="10.1.2.3", port=DEFAULT_HTTP_PORT)


def test_the_mcp_command_parses_its_options():
    args = build_parser().parse_args(["mcp", "--http", "--port", "9001", "--profile", "offline"])
    assert args.func is run_mcp
    assert (args.http, args.host, args.port, args.allow_remote) == (True, "127.0.0.1", 9001, False)
    assert (args.profile, args.llm) == ("offline", None)
    stdio = build_parser().parse_args(["mcp", "--llm", "openai:gpt-4o-mini"])
    assert (stdio.http, stdio.port, stdio.llm) == (False, DEFAULT_HTTP_PORT, "openai:gpt-4o-mini")
