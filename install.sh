#!/bin/sh
# Builds reagent in release mode and installs `reagent` and `reagentd` where the shell finds
# them: /usr/local/bin when writable, else ~/.local/bin (with a hint if that is not on PATH).
set -eu

cd "$(dirname "$0")"
cargo build --release --locked -p reagentd -p reagent-tui

if [ -w /usr/local/bin ]; then
    dest=/usr/local/bin
else
    dest="$HOME/.local/bin"
    mkdir -p "$dest"
fi

for bin in reagent reagentd; do
    # Install beside a running copy without disturbing it: write a new file, then rename.
    cp target/release/$bin "$dest/.$bin.new"
    mv -f "$dest/.$bin.new" "$dest/$bin"
done
echo "installed reagent and reagentd in $dest"

case ":$PATH:" in
    *":$dest:"*) ;;
    *) echo "note: $dest is not on your PATH; add it, e.g. echo 'export PATH=\"$dest:\$PATH\"' >> ~/.profile" ;;
esac
