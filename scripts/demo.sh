#!/usr/bin/env bash
# The one-command demo: a local control plane with sealant-controller installed as a
# default install would run it, and a secret walked through it (see README, "Try it").
#
# It shares one build with the test command (scripts/test.sh): the same Cargo target
# directory under ~/.cache/sealant/, and the same build of the whole workspace, so
# whichever of the two runs second compiles nothing the first already built.
#
# Usage: scripts/demo.sh [--sealant | --bitnami | --help]   (default: --sealant)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=$SECONDS
# local-cluster's last line gives the time since this launch.
export SEALANT_DEMO_LAUNCHED_AT=${SEALANT_DEMO_LAUNCHED_AT:-$(date +%s.%N)}
cache=${SEALANT_CACHE:-$HOME/.cache/sealant}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/cargo-target}
# As scripts/test.sh, so both share the same artifacts.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(--sealant)

step() { printf '==> %s\n' "$*"; }

if [[ " ${args[*]} " != *" --help "* && " ${args[*]} " != *" -h "* ]]; then
    step "test peers (etcd, kube-apiserver, kube-controller-manager, kubectl, ...): many minutes the first time, then cached"
    peers=$(tests/peers/build.sh)
    set -a
    eval "$peers"
    set +a
fi

step "building the workspace as the test command does (minutes the first time, seconds after)"
cargo build --workspace --all-targets --locked --quiet
export SEALANT_BIN=$CARGO_TARGET_DIR/debug/sealant
export SEALANT_CONTROLLER_BIN=$CARGO_TARGET_DIR/debug/sealant-controller
step "built in $((SECONDS - started)) s since launch"
exec "$CARGO_TARGET_DIR/debug/local-cluster" "${args[@]}"
