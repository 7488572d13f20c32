#!/usr/bin/env bash
# Every check and every test suite, in the order CI runs them (`npm test`).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "tools (registries, notary, token server, cosign, notation, opa, crane, redis, etcd, kube-apiserver, gatekeeper) into ${PROVENANT_TOOLS_DIR:-$HOME/.cache/provenant/tools}"
bash test/tools/install.sh e2e
step "format (prettier --check)"
npx prettier --check . --log-level warn
step "lint (eslint, type-aware)"
npx eslint .
step "types (tsc --noEmit, strict)"
npx tsc --noEmit -p tsconfig.json
step "unit tests"
npx vitest run --project unit
step "integration tests (real tools on loopback)"
npx vitest run --project integration
step "end-to-end tests (etcd, kube-apiserver, Gatekeeper, Kyverno and Provenant on loopback)"
npx vitest run --project e2e
