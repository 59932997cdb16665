#!/usr/bin/env bash
# Makes the fixtures in tests/fixtures: for every release of every sample
# module, a tenant installed at that release with its reference data (and
# sample data where the release ships it), then changed the way tenants
# change things: a vendor record edited, one deleted, one of the tenant's
# own added. Each is captured with `graft fixture capture`.
#
# Rerun it (from anywhere) after changing a sample module's data or plugin:
#   scripts/make-fixtures.sh
# and review the diff of tests/fixtures like any other change.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/tests/fixtures"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p graft
graft() { "$root/target/release/graft" --data-dir "$work/data" "$@"; }

# put TENANT MODULE COLLECTION JSON: insert or replace one record.
put() { echo "$4" | graft data put --tenant "$1" --module "$2" --collection "$3" --file - >/dev/null; }

mkdir -p "$out"

for release in 1.0.0 1.1.0 2.0.0; do
  tenant="users${release//./}"
  graft tenant create "$tenant" >/dev/null
  graft install --tenant "$tenant" "mod-users-$release" \
    --load-reference --load-sample --param sampleUsers=100 >/dev/null
  # The tenant renames a patron group, deletes an address type it does not
  # use and adds a group of its own.
  put "$tenant" mod-users groups \
    '{"id":"3684a786-6671-4268-8ed0-9db82ebca60b","group":"staff","desc":"Library staff (our wording)","expirationOffsetInDays":730}'
  graft data delete --tenant "$tenant" --module mod-users --collection addresstypes \
    46ff3f08-8f41-485c-98d8-701ba8404f4f >/dev/null
  put "$tenant" mod-users groups \
    '{"id":"9b1e1f06-0000-4000-8000-00000000aa01","group":"alumni","desc":"Alumni (tenant group)"}'
  graft fixture capture --tenant "$tenant" --module mod-users \
    --out "$out/mod-users-$release.json"
done

for release in 19.0.0 23.0.0 27.0.0 30.0.5; do
  tenant="inventory${release//./}"
  graft tenant create "$tenant" >/dev/null
  sample=()
  # Of these releases, only 30.0.5 ships sample data.
  if [ "$release" = 30.0.5 ]; then sample=(--load-sample); fi
  graft install --tenant "$tenant" "mod-inventory-storage-$release" \
    --load-reference "${sample[@]}" >/dev/null
  # The tenant renames a material type, deletes a loan type and adds one of its own.
  put "$tenant" mod-inventory-storage material-types \
    '{"id":"1a54b431-2e4f-452d-9cae-9cee66c9a892","name":"book (monograph)","source":"folio"}'
  graft data delete --tenant "$tenant" --module mod-inventory-storage --collection loan-types \
    a1dc1ce3-d56f-4d8a-b498-d5d674ccc845 >/dev/null
  put "$tenant" mod-inventory-storage loan-types \
    '{"id":"9b1e1f06-0000-4000-8000-00000000bb01","name":"Interlibrary loan (tenant)"}'
  graft fixture capture --tenant "$tenant" --module mod-inventory-storage \
    --out "$out/mod-inventory-storage-$release.json"
done
