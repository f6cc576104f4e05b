#!/usr/bin/env bash
# Fuzzes sealant's decoders with libFuzzer (cargo-fuzz, nightly) and minimises the
# committed corpora (issue 11). The test command never fuzzes: it replays the
# committed corpora on stable (fuzz/tests/replay.rs).
#
# Usage:
#   scripts/fuzz.sh                 # every target, one after another
#   scripts/fuzz.sh unseal template # the named targets
#
# Each target runs until FUZZ_RUNS executions (default 10,000,000) or FUZZ_SECONDS
# seconds (default 1800), whichever comes first, under the limits of the code's own
# budgets (below). It then merges what it found into fuzz/corpus/<target>/, keeping
# only inputs that add coverage, and prints one record line per target for
# SECURITY.md. A crash stops the target and leaves the input in
# fuzz/artifacts/<target>/: fix it, and commit the input under
# fuzz/regressions/<target>/, where the test command replays it.
#
# Needs: the nightly toolchain (rustup), a C++ compiler, Python 3. Installs
# cargo-fuzz into ~/.cache/sealant/tools/ and builds into ~/.cache/sealant/fuzz-target.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${SEALANT_CACHE:-$HOME/.cache/sealant}
TOOLS=$CACHE/tools/cargo-fuzz-$CARGO_FUZZ_VERSION
CARGO_FUZZ=$TOOLS/bin/cargo-fuzz
FUZZ_TARGET_DIR=$CACHE/fuzz-target
WORK=$CACHE/fuzz-work
FUZZ_RUNS=${FUZZ_RUNS:-10000000}
FUZZ_SECONDS=${FUZZ_SECONDS:-1800}
ALL_TARGETS=(hybrid_open age_open bundle_open unseal template pem http_body)

# Limits that match the budgets of the code under test:
# - 10 s per input: a SealedSecret's templates get 1 s of wall time and 1,000,000
#   steps; one RSA-2048 open takes about a millisecond. Ten times that, for ASan.
# - 64 MiB for one allocation: a template string is capped at 1 MiB and the objects
#   it makes at 4 MiB, an HTTP body at 2 MiB, a key bundle at 32 MiB when the CLI
#   reads it.
# - 2 GiB of RSS for the whole process: the harness, ASan's shadow memory and
#   quarantine, and the corpus in memory.
LIMITS=(-timeout=10 -malloc_limit_mb=64 -rss_limit_mb=2048)

if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 1
fi
if [ ! -x "$CARGO_FUZZ" ]; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS" >&2
    cargo install --locked --quiet cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --root "$TOOLS"
fi

cd "$ROOT"
# The seeds go beside the committed corpus, not into it: the fuzzer reads both, and
# the merge below keeps a seed only if it adds coverage.
SEEDS=$WORK/seeds
rm -rf "$SEEDS"
python3 fuzz/seed.py "$SEEDS"

# cargo-fuzz's release build with ASan, debug assertions and overflow checks. Thin
# LTO (the product's release profile) would link every target for minutes; 16
# codegen units trade a little speed for a build that fits this machine.
export RUSTUP_TOOLCHAIN=nightly CARGO_INCREMENTAL=0 CARGO_PROFILE_RELEASE_LTO=false
FUZZ_FLAGS=(--fuzz-dir fuzz --features libfuzzer --target-dir "$FUZZ_TARGET_DIR" --codegen-units 16)
echo "fuzz.sh: building the targets (cargo fuzz build, nightly, ASan)" >&2
"$CARGO_FUZZ" build "${FUZZ_FLAGS[@]}"
BIN_DIR=$FUZZ_TARGET_DIR/x86_64-unknown-linux-gnu/release

for target in "${TARGETS[@]}"; do
    corpus=fuzz/corpus/$target
    work=$WORK/$target
    artifacts=fuzz/artifacts/$target
    log=$WORK/$target.log
    rm -rf "$work"
    mkdir -p "$work" "$artifacts" "$corpus"
    cp "$corpus"/. "$work"/ -r
    dict=()
    if [ -f "fuzz/dicts/$target.dict" ]; then
        dict=(-dict="fuzz/dicts/$target.dict")
    fi
    echo "fuzz.sh: $target: up to $FUZZ_RUNS runs or $FUZZ_SECONDS s (log: $log)" >&2
    start=$(date +%s)
    status=0
    ASAN_OPTIONS=detect_odr_violation=0:quarantine_size_mb=64 \
        "$BIN_DIR/$target" "$work" "$SEEDS/$target" "${LIMITS[@]}" "${dict[@]}" \
        -runs="$FUZZ_RUNS" -max_total_time="$FUZZ_SECONDS" \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    seconds=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # Keep only the inputs that add coverage: merge the work corpus into an empty one.
    merged=$WORK/$target.merged
    rm -rf "$merged"
    mkdir -p "$merged"
    ASAN_OPTIONS=detect_odr_violation=0 \
        "$BIN_DIR/$target" -merge=1 "$merged" "$work" "$SEEDS/$target" "${LIMITS[@]}" >"$log.merge" 2>&1
    rm -rf "$corpus"
    mv "$merged" "$corpus"
    crashes=$(find "$artifacts" -type f | wc -l)
    printf '%s\texecutions=%s\tseconds=%s\tcorpus=%s\tartifacts=%s\texit=%s\t%s\n' \
        "$target" "${execs:-?}" "$seconds" "$(find "$corpus" -type f | wc -l)" \
        "$crashes" "$status" "$(date -u +%Y-%m-%dT%H:%MZ)"
    if [ "$status" -ne 0 ]; then
        echo "fuzz.sh: $target stopped with a finding; its input is in $artifacts/ and the log in $log" >&2
        tail -40 "$log" >&2
    fi
done
