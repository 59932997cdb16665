#!/usr/bin/env sh
# Captures fixtures/{{module}}-RELEASE.json for `graft validate`: a throwaway
# tenant with the package of RELEASE (default 1.0.0) from dist/ installed,
# reference data loaded. Run it after ./build.sh. Keep the fixture of every
# release you ship: `graft validate` upgrades each one to the new release,
# and rolls back to it where the plugin says it can.
set -eu
cd "$(dirname "$0")"
release="${1:-1.0.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
graft="${GRAFT:-graft}"
"$graft" --data-dir "$work/data" --modules dist tenant create fixture
"$graft" --data-dir "$work/data" --modules dist install --tenant fixture "{{module}}-$release" --load-reference
mkdir -p fixtures
"$graft" --data-dir "$work/data" --modules dist fixture capture --tenant fixture \
    --module {{module}} --out "fixtures/{{module}}-$release.json"
