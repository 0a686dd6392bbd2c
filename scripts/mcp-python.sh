#!/bin/sh
# Makes a Python with the `mcp` package (the reference MCP SDK), for the tests that start the
# stand-in MCP server `tests/standin/mcp_server.py` (daemon/src/agent/mcp.rs).
#
# The venv lands in a cache outside the clone, keyed by the pinned version, so a rerun is
# instant:
#   $REAGENT_TEST_CACHE (default: ~/.cache/reagent-test)/mcp-python-<version>/
# Prints the venv's python on stdout; the tests take it from REAGENT_MCP_PYTHON, or find the
# default folder themselves.
set -eu

version=2.3.0
cache=${REAGENT_TEST_CACHE:-$HOME/.cache/reagent-test}
dir=$cache/mcp-python-$version
python=$dir/venv/bin/python

# `ok` is written last, so a venv left half-built by an interrupted run is built again.
if [ -x "$python" ] && [ -f "$dir/ok" ]; then
    echo "$python"
    exit 0
fi
mkdir -p "$dir"
log=$dir/build.log
: >"$log"
echo "mcp-python: installing mcp $version into $dir (log: $log)" >&2

# On failure, show why: CI prints this script's stderr, not the log.
built=
trap '[ -n "$built" ] || { echo "mcp-python: install failed; the end of $log:" >&2; tail -n 30 "$log" >&2; }' EXIT

# A Python without ensurepip (Debian without python3-venv) gets a bare venv, and pip installs
# itself into it.
rm -rf "$dir/venv" "$dir/ok"
if ! python3 -m venv "$dir/venv" >>"$log" 2>&1; then
    rm -rf "$dir/venv"
    python3 -m venv --without-pip "$dir/venv" >>"$log" 2>&1
    python3 -m pip --python "$python" install --quiet pip >>"$log" 2>&1
fi
"$python" -m pip install --quiet "mcp==$version" >>"$log" 2>&1
"$python" -c 'import mcp.server' >>"$log" 2>&1
: >"$dir/ok"
built=yes
echo "$python"
