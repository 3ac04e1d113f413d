#!/usr/bin/env bash
# Runs every test: installs the real peers the differential suite needs (OpenBao, hvac), then
# the whole workspace's tests. This is the README's test command.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bao="$(scripts/install-peers.sh | tail -n 1)"
export TRESOR_BAO_BIN="$bao"
exec cargo test --workspace "$@"
