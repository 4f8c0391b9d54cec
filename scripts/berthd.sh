#!/usr/bin/env bash
# Installs what berthd needs, then starts it on its embedded defaults
# (--root /var/lib/berth, --state /run/berth, --address /run/berth/berth.sock).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
exec ./bin/berthd "$@"
