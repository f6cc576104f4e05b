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
# Incremental compilation caches nothing useful for a fresh clone (every clone path is
# a new package) and cost about 14 GB; off, as in CI builds generally.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

step "toolchain: $(cargo --version), $(rustc --version)"

step "system packages (iproute2, python3-venv, git, buildah, skopeo, prometheus, containerd, runc, CNI plugins, iptables, conntrack; installed only when missing)"
"$root/scripts/system-deps.sh"

step "independent implementation for the known-answer tests (Python cryptography)"
# shellcheck source=scripts/python-env.sh
source "$root/scripts/python-env.sh"
echo "SEALANT_PYTHON=$SEALANT_PYTHON"

step "test peers: etcd, kube-apiserver, kube-controller-manager, kubectl, kubelet, kube-proxy, kube-scheduler, the pause image, Bitnami kubeseal, controller (and its image), integration suite and chart, age, kstatus, Argo CD health, helm"
# Built once from the Go module proxy (the README gives the cold time), then reused from
# ~/.cache/sealant/bin in 0.01 s. The end-to-end harness would run it itself; doing it
# here shows the build as its own step. TEST_ASSET_* set by the caller win.
peers=$(tests/peers/build.sh)
printf '%s\n' "$peers"
set -a
eval "$peers"
set +a

step "format"
cargo fmt --all -- --check

step "lints (clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (unit, known-answer vectors, property and fuzz harnesses, CLI, generated files, end-to-end on a local control plane with the real Bitnami peers)"
# The end-to-end suites run the `sealant` and `sealant-controller` that this same
# `cargo test` builds before it runs any test, instead of building them again.
export SEALANT_BIN=${SEALANT_BIN:-$CARGO_TARGET_DIR/debug/sealant}
export SEALANT_CONTROLLER_BIN=${SEALANT_CONTROLLER_BIN:-$CARGO_TARGET_DIR/debug/sealant-controller}
timings="$CARGO_TARGET_DIR/sealant-e2e-timings.txt"
timings_before=$( (cat "$timings" 2>/dev/null || true) | wc -l)
cargo test --workspace --locked --no-fail-fast

step "end-to-end timings of this run (measured, not asserted)"
tail -n "+$((timings_before + 1))" "$timings" 2>/dev/null || true

step "advisories on the dependency tree (cargo deny)"
"$root/scripts/deny.sh"

step "done in $((SECONDS - started)) s"
