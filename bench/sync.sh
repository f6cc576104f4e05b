#!/usr/bin/env bash
# Cold sync of N SealedSecrets and controller memory: sealant-controller against the
# real Bitnami controller (v0.36.6) on one local control plane (etcd, kube-apiserver,
# kube-controller-manager), plus the floor (a plain client creating the same Secrets,
# and the RSA work divided by the cores) and the ideal run (a plain client doing only
# the mandatory work: opens, Secret create, status write, event). docs/design.md,
# "Performance targets".
#
# Usage: bench/sync.sh [smoke|sync|memory|restart|steady|scale|all] [extra bench-sync flags]
#   smoke   N=50, floor + ideal + sealant + Bitnami raised + Bitnami default (~2 min)
#   sync    N=1000, the same five runs (Bitnami default alone takes ~10+ min)
#   memory  N=10000 SealedSecrets + 10000 unrelated Secrets: floor, ideal, sealant and
#           Bitnami raised (Bitnami default would take over an hour: skipped)
#   restart N=10000 + 10000 unrelated, in sync, restarted, one new SealedSecret 1 s
#           later: sealant and Bitnami raised
#   steady  N=10000 + 10000 unrelated in sync, 200 new at 20/s: p50/p99/max of
#           apply-to-Secret, sealant and Bitnami raised (~7 min)
#   scale   N=30000 + 10000 unrelated: ideal, sealant, Bitnami raised (~15 min)
#   all     sync, then memory (default)
#
# Results (a markdown table and JSON lines per invocation) are appended to $OUT
# (default $CARGO_TARGET_DIR/bench-sync/results.md); each controller's log is copied to
# $OUT's directory under logs/. Then bench/chart.py draws the cold syncs in $OUT
# (time and peak RSS against N) as sync-chart.svg beside it; the chart in
# BENCHMARKS.md is bench/sync-chart.svg, drawn from bench/sync-results.jsonl (the JSON
# lines of the runs BENCHMARKS.md reports). Needs root (the harness makes a network
# namespace).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

mode=${1:-all}
[ $# -gt 0 ] && shift
target=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TARGET_DIR=$target
out=${OUT:-$target/bench-sync/results.md}
mkdir -p "$(dirname "$out")"

# The peers (built once, then cached), exported for the harness.
set -a
eval "$(tests/peers/build.sh)"
set +a
cargo build --release -p sealant-e2e -p sealant-controller --bin bench-sync --bin sealant-controller
export SEALANT_CONTROLLER_BIN=$target/release/sealant-controller
bench=$target/release/bench-sync

run() {
  echo "+ bench-sync $*" >&2
  "$bench" --out "$out" --logs "$(dirname "$out")/logs" "$@"
}

case $mode in
  smoke)  run --n 50 --runs floor,ideal,sealant,bitnami-raised,bitnami-default "$@" ;;
  sync)   run --n 1000 --runs floor,ideal,sealant,bitnami-raised,bitnami-default "$@" ;;
  memory) run --n 10000 --unrelated-secrets 10000 --runs floor,ideal,sealant,bitnami-raised "$@" ;;
  restart) run --n 10000 --unrelated-secrets 10000 --runs sealant-restart,bitnami-raised-restart "$@" ;;
  steady) run --n 10000 --unrelated-secrets 10000 --runs sealant-steady,bitnami-raised-steady "$@" ;;
  scale)  run --n 30000 --unrelated-secrets 10000 --runs ideal,sealant,bitnami-raised "$@" ;;
  all)
    run --n 1000 --runs floor,ideal,sealant,bitnami-raised,bitnami-default "$@"
    run --n 10000 --unrelated-secrets 10000 --runs floor,ideal,sealant,bitnami-raised "$@"
    ;;
  *) echo "usage: bench/sync.sh [smoke|sync|memory|restart|steady|scale|all] [bench-sync flags]" >&2; exit 2 ;;
esac
echo "results appended to $out" >&2
chart=$(dirname "$out")/sync-chart.svg
python3 "$root/bench/chart.py" "$out" > "$chart"
echo "chart of the cold syncs in $out: $chart" >&2
