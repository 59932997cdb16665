#!/usr/bin/env sh
# Builds the plugin with componentize-py (pip install -r requirements.txt)
# and assembles the package into dist/ (graft package checks it as
# `graft install` would; its plugin cache is target/graft). PYTHON: the Python that has componentize-py.
set -eu
cd "$(dirname "$0")"
"${PYTHON:-python3}" build.py --app src --wit wit --out target/plugin.wasm
"${GRAFT:-graft}" --data-dir target/graft package package --plugin target/plugin.wasm --out dist
