#!/usr/bin/env sh
# Builds the plugin with componentize-js (npm ci) and assembles the package
# into dist/ (graft package checks it as `graft install` would; its plugin
# cache is target/graft). The data
# folders of package/ are embedded into the plugin at this step.
set -eu
cd "$(dirname "$0")"
node build.mjs --app src --package package --wit wit --out target/plugin.wasm
"${GRAFT:-graft}" --data-dir target/graft package package --plugin target/plugin.wasm --out dist
