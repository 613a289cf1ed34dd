#!/usr/bin/env bash
# Puts the vendored advisory snapshot where cargo-deny looks for the default database
# (<db-path>/advisory-db-<xxh64 of its URL>), as the git repository it expects, so that
# `cargo deny check --disable-fetch` runs without network. Fails when Cargo.lock names a crate
# the snapshot was not filtered for (run deny/refresh-advisories.sh), and says how old it is.
set -euo pipefail
cd "$(dirname "$0")/.."
src=deny/advisory-db
db=${1:-target/advisory-dbs}/advisory-db-3157b0e258782691
missing=$(comm -23 <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.lock | sort -u) "$src/CRATES")
if [ -n "$missing" ]; then
  echo "deny/advisory-db was made for an older Cargo.lock; not covered: $missing" >&2
  echo "run deny/refresh-advisories.sh with a fresh advisory-db checkout" >&2
  exit 1
fi
snap_date=$(sed -n 's/^date //p' "$src/SNAPSHOT")
age_days=$(( ( $(date -u +%s) - $(date -u -d "$snap_date" +%s) ) / 86400 ))
echo "advisory snapshot: $(sed -n 's/^commit //p' "$src/SNAPSHOT"), $snap_date ($age_days days old)" >&2
if [ "$age_days" -gt 90 ]; then
  echo "warning: the advisory snapshot is over 90 days old; refresh it (deny/refresh-advisories.sh)" >&2
fi
rm -rf "$db"
mkdir -p "$db"
cp -r "$src/crates" "$db/crates"
git -C "$db" init -q -b main
git -C "$db" add -A
GIT_AUTHOR_DATE="$snap_date" GIT_COMMITTER_DATE="$snap_date" \
  git -C "$db" -c user.name=kluis-ci -c user.email=ci@kluis.invalid commit -q -m "snapshot $snap_date"
