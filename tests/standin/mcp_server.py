#!/usr/bin/env python3
"""A stand-in MCP server for the tests of reagent's MCP client (daemon/src/agent/mcp.rs).

It speaks MCP over stdio through the reference SDK (the `mcp` package; make a Python that has
it with `scripts/mcp-python.sh`) and offers five tools, each for one path of the client:

- echo(text): returns `text`, the plain call.
- add(a, b): returns a + b, a call with typed arguments and a structured result.
- hang(seconds): blocks the whole server (its event loop, not a worker thread) for `seconds`,
  so it answers nothing meanwhile, not even other calls: a hung server, for the timeouts.
- crash(): exits the process at once with status 1, as a server that dies mid-call.
- getenv(name): the value of an environment variable ("" when unset), to show which of the
  daemon's variables a server is given.

It logs a line to stderr at start, which the client must keep off the daemon's terminal.
"""

import os
import sys
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("reagent-standin")


@server.tool()
def echo(text: str) -> str:
    """Returns the text it is given."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
async def hang(seconds: float) -> str:
    """Sleeps for `seconds` while blocking the whole server."""
    time.sleep(seconds)  # blocking on purpose: the server stops answering anything
    return "woke up"


@server.tool()
def crash() -> str:
    """Exits the server process at once, without answering."""
    sys.stderr.flush()
    os._exit(1)


@server.tool()
def getenv(name: str) -> str:
    """Returns an environment variable's value, or "" when it is unset."""
    return os.environ.get(name, "")


if __name__ == "__main__":
    print("stand-in MCP server: starting on stdio", file=sys.stderr, flush=True)
    server.run("stdio")
