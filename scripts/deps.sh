#!/usr/bin/env bash
# Installs what Berth needs on a Debian bookworm machine, idempotently: the apt packages (build
# tools, and with --test the real parts the tests drive) and the npm dependencies, which also
# builds the native addon, berth-runtime and the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(make gcc g++ python3 pkg-config libseccomp-dev libcap-dev util-linux iproute2 tar gzip zstd)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(containerd docker-registry skopeo busybox-static runc crun apache2-utils jq openssl libcap2-bin bsdutils)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=node_modules/.berth-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ -n "$(find services shim cli native proto -newer "$stamp" -type f -print -quit 2>/dev/null)" ]; then
  npm ci --no-audit --no-fund
  touch "$stamp"
fi
