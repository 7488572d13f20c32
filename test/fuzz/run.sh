#!/usr/bin/env bash
# `npm run fuzz [-- RUNS [vitest filters…]]`: runs every property in provider/test/fuzz with RUNS inputs
# each (default: $PROVENANT_FUZZ_RUNS, else 100000) instead of the bounded count `npm test` uses, then
# prints, per parser, how many inputs ran clean. A failing property prints its seed and counterexample
# and the run exits non-zero. Filters narrow it, e.g. `npm run fuzz -- 1000000 reference challenge`.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-${PROVENANT_FUZZ_RUNS:-100000}}"
shift || true
filters=("$@")
[ ${#filters[@]} -eq 0 ] && filters=(provider/test/fuzz/)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
PROVENANT_FUZZ_RUNS="$runs" npx vitest run --project unit --maxWorkers=2 "${filters[@]}" 2>&1 | tee "$log" || status=$?
echo
echo "Inputs that ran clean, per parser (PROVENANT_FUZZ_RUNS=$runs):"
grep -o 'fuzz: .*' "$log" | sed 's/^fuzz: /  /' | sort
exit "$status"
