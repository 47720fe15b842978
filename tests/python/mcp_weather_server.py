"""A small MCP server on the official Python SDK (`mcp`), spoken to over stdio by the
gateway in test_mcp.py."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("weather")


@server.tool()
def weather(location: str) -> str:
    """Current weather of a city."""
    return f"sunny in {location}"


if __name__ == "__main__":
    server.run("stdio")
