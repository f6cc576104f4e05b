#!/usr/bin/env bash
# `sealant scan` over a generated repository of 10,000 manifests (mixed kinds, 1%
# planted leaks in five forms). docs/design.md target: under 1 s warm on 2 cores, every
# planted leak found, no false positive.
#
# Usage: bench/scan.sh [N]      (builds sealant --release; needs hyperfine: apt-get install hyperfine)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n=${1:-10000}

command -v hyperfine >/dev/null || { echo "error: hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }
cargo build --quiet --release -p sealant-cli --bin sealant
target=${CARGO_TARGET_DIR:-$root/target}
sealant="$target/release/sealant"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/scan_gen.py "$work/repo" "$n"
git -C "$work/repo" init -q
echo "files: $(find "$work/repo" -name '*.yaml' -o -name '*.json' | wc -l), $(du -sh --apparent-size "$work/repo" | cut -f1)"

# Correctness first: exactly the planted files, each once (a leak is one finding).
cd "$work/repo"
set +e
"$sealant" scan --format json > "$work/report.json"
code=$?
set -e
[ "$code" = 1 ] || { echo "error: expected exit 1, got $code" >&2; exit 1; }
python3 - "$work/report.json" .planted <<'PY'
import json, sys
found = sorted(f["path"] for f in json.load(open(sys.argv[1]))["findings"])
planted = sorted(open(sys.argv[2]).read().split())
missed = sorted(set(planted) - set(found))
extra = sorted(set(found) - set(planted))
print(f"findings: {len(found)}, planted: {len(planted)}, missed: {len(missed)}, false positives: {len(extra)}")
if missed or extra or len(found) != len(planted):
    print("missed:", missed[:10], "extra:", extra[:10])
    sys.exit(1)
PY

nproc
hyperfine --warmup 3 --runs 20 -N -i --export-markdown "$work/result.md" \
  --command-name "sealant scan ($n manifests)" "$sealant scan --format json"
cat "$work/result.md"
