#!/usr/bin/env sh
# Builds the plugin and assembles the package into dist/ (graft package
# checks it as `graft install` would; its plugin cache is target/graft).
set -eu
cd "$(dirname "$0")"
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --release --target wasm32-wasip2
target="${CARGO_TARGET_DIR:-target}"
"${GRAFT:-graft}" --data-dir target/graft package package --plugin "$target/wasm32-wasip2/release/{{crate_file}}.wasm" --out dist
