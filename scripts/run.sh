#!/usr/bin/env bash
# Command 1: install what is missing, build, and run loophole in the foreground with its embedded
# defaults (listening on 127.0.0.53:53). Extra arguments are passed to loophole.
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
lh_install_missing "${LH_BUILD_PKGS[@]}"
lh_build "$LH_ROOT/build" -DCMAKE_BUILD_TYPE=Release
exec "$LH_ROOT/build/loophole" serve "$@"
