# The official MCP Python SDK for `vidchat mcp` (mcp 2.x: MCPServer, the SDK's Client in tests).
# Pinned: its 2.x API differs from 1.x (FastMCP became MCPServer).
$PYC "import importlib.metadata as m; assert m.version('mcp') == '2.3.0'" 2>/dev/null || $PIP "mcp==2.3.0"
