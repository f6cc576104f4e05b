#!/usr/bin/env bash
# cargo-deny over the workspace: bans, licenses and sources, and the RustSec advisories.
#
# cargo-deny is installed once (idempotent) under
#   ${SEALANT_CACHE:-~/.cache/sealant}/tools/cargo-deny-$version/
#
# The advisory database is a git repository (github.com/rustsec/advisory-db), not a
# crate, so no package registry carries it. The check uses the first of these that
# exists and says which one it used, with the database's commit and date:
#
#   1. the network: cargo-deny fetches the database into $CARGO_HOME/advisory-dbs/;
#   2. the bundle: ../shared/rustsec/advisory-db.bundle beside the repository root
#      (override with SEALANT_ADVISORY_BUNDLE), a git bundle of a snapshot of the
#      database. It is cloned afresh into a database directory of its own under the
#      cache, and the check runs offline against it;
#   3. a clone already in $CARGO_HOME/advisory-dbs/ from an earlier fetch (cargo-deny
#      refuses it once it is more than 90 days old).
#
# An advisory fails the script. So does a check that cannot fail: after a clean
# check, the same database with one planted advisory (against zeroize, a direct
# dependency) must be reported, or the script stops, because then the database is not
# being read. Only when none of the three exists is the check skipped, with
# "advisories NOT CHECKED"; SEALANT_REQUIRE_ADVISORIES=1 makes that an error too.
set -euo pipefail

version=0.20.2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cache="${SEALANT_CACHE:-$HOME/.cache/sealant}"
tools="$cache/tools/cargo-deny-$version"
deny="$tools/bin/cargo-deny"
if [ ! -x "$deny" ] || [ "$("$deny" --version 2>/dev/null)" != "cargo-deny $version" ]; then
  echo "installing cargo-deny $version into $tools (a few minutes, once)"
  nice -n 10 cargo install --locked --quiet cargo-deny --version "$version" --root "$tools"
fi

# Also downloads the sources of every crate in the graph (all platforms), which the
# offline advisories check below needs for `cargo metadata`.
"$deny" deny --locked check bans licenses sources

bundle="${SEALANT_ADVISORY_BUNDLE:-$root/../shared/rustsec/advisory-db.bundle}"
work="$cache/advisory-dbs"

# deny.toml with the advisory databases under $1 instead of $CARGO_HOME.
config_with_db_path() {
  if grep -q '^db-path' deny.toml; then
    echo "error: deny.toml sets db-path; scripts/deny.sh sets it itself" >&2
    exit 1
  fi
  mkdir -p "$1"
  sed "s|^\[advisories\]\$|[advisories]\ndb-path = \"$1\"|" deny.toml >"$1/deny.toml"
  echo "$1/deny.toml"
}

# The directory cargo-deny opens for the configured database URL: the folder name is
# a hash of the URL that only cargo-deny knows, so ask it (its debug log says).
db_dir_of() {
  local config=()
  if [ -n "$1" ]; then config=(--config "$1"); fi
  local log
  log=$("$deny" deny -L debug "${config[@]}" --offline --locked check advisories 2>&1) || true
  local dir
  dir=$(sed -n "s/.*Opening advisory database at '\(.*\)'.*/\1/p" <<<"$log" | head -n 1)
  if [ -z "$dir" ]; then
    echo "error: cargo-deny did not say where it keeps the advisory database:" >&2
    echo "$log" >&2
    exit 1
  fi
  echo "$dir"
}

describe() {
  git -C "$1" log -1 --format='commit %h, dated %cs' HEAD
}

# Proves that the check reads the database: a copy of it with one more advisory, for
# a crate the workspace depends on at every version, must fail.
prove_check_can_fail() {
  local canary="$work/canary" config dir out
  rm -rf "$canary"
  config=$(config_with_db_path "$canary")
  dir=$(db_dir_of "$config")
  git clone --quiet "$1" "$dir"
  mkdir -p "$dir/crates/zeroize"
  cat >"$dir/crates/zeroize/RUSTSEC-2000-9999.md" <<'EOF'
```toml
[advisory]
id = "RUSTSEC-2000-9999"
package = "zeroize"
date = "2000-01-01"

[versions]
patched = []
```

# Planted by scripts/deny.sh to prove that the advisories check can fail
EOF
  if out=$("$deny" deny --config "$config" --offline --locked check advisories 2>&1); then
    echo "error: the advisories check passed with a planted advisory against zeroize:" >&2
    echo "the database in $1 is not being read" >&2
    exit 1
  fi
  if ! grep -q "RUSTSEC-2000-9999" <<<"$out"; then
    echo "error: the advisories check failed without naming the planted advisory:" >&2
    echo "$out" >&2
    exit 1
  fi
  rm -rf "$canary"
}

default_dir=$(db_dir_of "")
if "$deny" deny fetch db >/dev/null 2>&1; then
  "$deny" deny --offline --locked check advisories
  prove_check_can_fail "$default_dir"
  echo "advisories checked against the RustSec advisory database fetched just now," \
    "$(describe "$default_dir")"
elif [ -f "$bundle" ]; then
  shown_bundle=$bundle
  case "$bundle" in "$root"/../*) shown_bundle=${bundle#"$root"/} ;; esac
  rm -rf "$work/bundle"
  config=$(config_with_db_path "$work/bundle")
  dir=$(db_dir_of "$config")
  git clone --quiet "$bundle" "$dir"
  echo "advisory database not reachable; checking against the snapshot in $shown_bundle," \
    "$(describe "$dir")"
  "$deny" deny --config "$config" --offline --locked check advisories
  prove_check_can_fail "$dir"
  echo "advisories checked against the RustSec advisory database snapshot $shown_bundle," \
    "$(describe "$dir") (advisories published after that date are not in it)"
elif [ -d "$default_dir/.git" ]; then
  echo "advisory database not reachable; checking against the cached clone in $default_dir," \
    "$(describe "$default_dir")"
  "$deny" deny --offline --locked check advisories
  prove_check_can_fail "$default_dir"
  echo "advisories checked against the cached RustSec advisory database $default_dir," \
    "$(describe "$default_dir") (advisories published after that date are not in it)"
elif [ "${SEALANT_REQUIRE_ADVISORIES:-0}" = 1 ]; then
  echo "error: the RustSec advisory database cannot be fetched, $bundle does not exist" \
    "and no clone is cached in $(dirname "$default_dir")" >&2
  exit 1
else
  echo "WARNING: advisories NOT CHECKED: the RustSec advisory database (a GitHub repository)" >&2
  echo "cannot be fetched from here, there is no snapshot at $bundle and no clone is" >&2
  echo "cached in $(dirname "$default_dir")." >&2
  echo "Run scripts/deny.sh where GitHub is reachable, or set SEALANT_ADVISORY_BUNDLE." >&2
fi
