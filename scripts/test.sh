#!/usr/bin/env bash
# The whole sealant test suite. `.ci/run` calls exactly this, so what CI checks, a user
# can check too. Everything the suite needs is installed by the scripts it calls, and
# heavy builds are cached under ~/.cache/sealant/, keyed by version.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cache=${SEALANT_CACHE:-$HOME/.cache/sealant}
mkdir -p "$cache"
# One shared Cargo target directory across clones: a fresh clone reuses the compiled
# dependencies instead of building AWS-LC and kube-rs again.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/cargo-target}

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

step "toolchain: $(cargo --version), $(rustc --version)"

step "independent implementation for the known-answer tests (Python cryptography)"
# shellcheck source=scripts/python-env.sh
source "$root/scripts/python-env.sh"
echo "SEALANT_PYTHON=$SEALANT_PYTHON"

step "format"
cargo fmt --all -- --check

step "lints (clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (unit, known-answer vectors, property and fuzz harnesses, CLI, generated files)"
cargo test --workspace --locked --no-fail-fast

step "advisories on the dependency tree (cargo deny)"
"$root/scripts/deny.sh"

step "done in $((SECONDS - started)) s"
