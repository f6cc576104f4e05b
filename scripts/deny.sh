#!/usr/bin/env bash
# cargo-deny over the workspace: bans, licenses and sources always, and RustSec
# advisories whenever the advisory database can be had.
#
# cargo-deny is installed once (idempotent) under
#   ${SEALANT_CACHE:-~/.cache/sealant}/tools/cargo-deny-$version/
# The advisory database is a git clone of github.com/rustsec/advisory-db that
# cargo-deny keeps under $CARGO_HOME/advisory-dbs/. It is not a crate and no package
# registry carries it, so where GitHub cannot be reached (as on the project's own
# machines) the advisories check runs only against a clone that is already there, for
# example one copied in from a machine with network access. With no clone at all it is
# reported as NOT CHECKED; set SEALANT_REQUIRE_ADVISORIES=1 to make that an error.
set -euo pipefail

version=0.20.2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

tools="${SEALANT_CACHE:-$HOME/.cache/sealant}/tools/cargo-deny-$version"
deny="$tools/bin/cargo-deny"
if [ ! -x "$deny" ] || [ "$("$deny" --version 2>/dev/null)" != "cargo-deny $version" ]; then
  echo "installing cargo-deny $version into $tools (a few minutes, once)"
  nice -n 10 cargo install --locked --quiet cargo-deny --version "$version" --root "$tools"
fi

"$deny" deny --locked check bans licenses sources

db_dir="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if "$deny" deny fetch db >/dev/null 2>&1; then
  "$deny" deny --locked check advisories
elif compgen -G "$db_dir/advisory-db-*/.git" >/dev/null; then
  echo "advisory database not reachable; checking against the cached clone in $db_dir"
  "$deny" deny --locked --offline check advisories
elif [ "${SEALANT_REQUIRE_ADVISORIES:-0}" = 1 ]; then
  echo "error: the RustSec advisory database cannot be fetched and no clone is cached in $db_dir" >&2
  exit 1
else
  echo "WARNING: advisories NOT CHECKED: the RustSec advisory database (a GitHub repository)" >&2
  echo "cannot be fetched from here and no clone is cached in $db_dir." >&2
  echo "Run scripts/deny.sh where GitHub is reachable, or copy a clone there." >&2
fi
