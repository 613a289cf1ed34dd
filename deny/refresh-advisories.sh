#!/usr/bin/env bash
# Refreshes the vendored RustSec advisory snapshot (deny/advisory-db) from a checkout of
# https://github.com/rustsec/advisory-db, keeping only the advisories of crates in Cargo.lock
# (about 150 KB instead of 1.3 MB). Run it after updating the checkout, and after any change to
# Cargo.lock that adds a crate (.ci/run fails until then):
#   git clone --depth 1 https://github.com/rustsec/advisory-db /tmp/advisory-db
#   deny/refresh-advisories.sh /tmp/advisory-db
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:?usage: deny/refresh-advisories.sh PATH-TO-ADVISORY-DB-CHECKOUT-OR-BARE-REPO}
gitdir=$src
if [ ! -d "$src/crates" ] && git --git-dir="$src" rev-parse HEAD >/dev/null 2>&1; then
  # A bare mirror: export its HEAD.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  git --git-dir="$src" archive HEAD | tar -x -C "$tmp"
  src=$tmp
fi
[ -d "$src/crates" ] || { echo "$src has no crates/ directory" >&2; exit 1; }
dst=deny/advisory-db
rm -rf "$dst"
mkdir -p "$dst/crates"
sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.lock | sort -u > "$dst/CRATES"
while read -r c; do
  if [ -d "$src/crates/$c" ]; then cp -r "$src/crates/$c" "$dst/crates/$c"; fi
done < "$dst/CRATES"
cp "$src/LICENSE.txt" "$dst/LICENSE.txt"
if [ -d "$gitdir/.git" ] || git --git-dir="$gitdir" rev-parse HEAD >/dev/null 2>&1; then
  { [ -d "$gitdir/.git" ] && git -C "$gitdir" log -1 --format='commit %H%ndate %cI' \
    || git --git-dir="$gitdir" log -1 --format='commit %H%ndate %cI'; } > "$dst/SNAPSHOT"
else
  printf 'commit unknown\ndate %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$dst/SNAPSHOT"
fi
echo "vendored $(find "$dst/crates" -name '*.md' | wc -l) advisories for $(ls "$dst/crates" | wc -l) of $(wc -l < "$dst/CRATES") crates ($(find "$dst" -type f -exec cat {} + | wc -c) bytes); $(head -1 "$dst/SNAPSHOT")"
