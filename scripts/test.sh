#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs every test (unit, integration as root
# with real mounts and processes, interop with the stock ctr).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --test
# The tests are strict TypeScript too; vitest itself only strips the types.
npx tsc -p test/tsconfig.json
exec npx vitest run "$@"
