#!/usr/bin/env python3
"""Builds a Graft plugin written in Python into a WebAssembly component.

    python build.py --app DIR --wit DIR --out plugin.wasm

--app  the plugin's modules (`app.py` sets `Migration = graft_sdk.export(...)`)
--wit  the contract (`graft wit --out DIR`)

The SDK (`graft_sdk.py`) is taken from the app folder if it has one, else
from beside this script. componentize-py (plugins/python/requirements.txt)
must be installed in the Python that runs this script.
"""

import argparse
import os
import shutil
import subprocess
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", required=True, help="folder with app.py")
    parser.add_argument("--wit", required=True, help="folder with the contract")
    parser.add_argument("--out", required=True, help="the component to write")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.app, "app.py")):
        sys.exit(f"build.py: {args.app}: no app.py (the module that sets Migration)")
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [args.app]
    if not os.path.isfile(os.path.join(args.app, "graft_sdk.py")):
        paths.append(here)
    tool = shutil.which("componentize-py", path=os.path.dirname(sys.executable)) or shutil.which("componentize-py")
    if tool is None:
        sys.exit("build.py: componentize-py is not installed: pip install -r requirements.txt")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    command = [tool, "-d", args.wit, "-w", "plugin", "componentize", "app", "-o", args.out]
    for path in paths:
        command[-3:-3] = ["-p", path]
    # Bytecode caches of the build must not land in the source folders.
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.exit(f"build.py: componentize-py failed:\n{result.stdout}")
    print(f"{args.out}: {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
