#!/usr/bin/env bash
# Installs the pinned toolchains of Python and JavaScript plugins, each
# once (a stamp records the pin it was installed from):
#   python: a virtual environment in target/lang-toolchains/python with
#           plugins/python/requirements.txt (componentize-py);
#   js:     `npm ci` in plugins/js (package-lock.json: componentize-js).
# Prints the Python to build with and the JS build script. Safe to run
# from several processes at once (flock). Needs python3 with venv, node and
# npm, and the PyPI and npm registries.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/target/lang-toolchains"
mkdir -p "$tools"
exec 9>"$tools/.lock"
flock 9

pin() { sha256sum "$@" | sha256sum | cut -c1-16; }

python_pin="$(pin "$root/plugins/python/requirements.txt")"
if [ "$(cat "$tools/python.stamp" 2>/dev/null)" != "$python_pin" ]; then
    rm -rf "$tools/python"
    python3 -m venv "$tools/python" >&2
    "$tools/python/bin/pip" install --quiet --disable-pip-version-check \
        -r "$root/plugins/python/requirements.txt" >&2
    echo "$python_pin" >"$tools/python.stamp"
fi

js_pin="$(pin "$root/plugins/js/package.json" "$root/plugins/js/package-lock.json")"
if [ "$(cat "$tools/js.stamp" 2>/dev/null)" != "$js_pin" ] || [ ! -d "$root/plugins/js/node_modules" ]; then
    (cd "$root/plugins/js" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$js_pin" >"$tools/js.stamp"
fi

echo "python=$tools/python/bin/python"
echo "js=$root/plugins/js/build.mjs"
