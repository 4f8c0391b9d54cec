#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs every test (unit, integration as root
# with real mounts and processes, interop with the stock ctr).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --test
exec npx vitest run "$@"
