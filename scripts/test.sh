#!/usr/bin/env bash
# Command 2: install what is missing, build, and run the whole test suite: the normal build, then
# the same suite in an ASan+UBSan build, then each fuzz target for a short bounded time.
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
lh_install_missing "${LH_BUILD_PKGS[@]}" "${LH_TEST_PKGS[@]}"

jobs=$(nproc)
echo "== build (RelWithDebInfo) and test"
lh_build "$LH_ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
ctest --test-dir "$LH_ROOT/build" --output-on-failure -j "$jobs"

echo "== build (ASan+UBSan) and test"
lh_build "$LH_ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DLH_SANITIZE=ON \
    -DCMAKE_C_COMPILER=clang
# Not the tests labelled "container" again: they test the image's own build and the systemd
# unit, which the first run has done; only their minutes would be spent twice.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$LH_ROOT/build-asan" --output-on-failure -j "$jobs" -LE container

echo "== fuzz targets (bounded)"
lh_build "$LH_ROOT/build-fuzz" -DCMAKE_BUILD_TYPE=Debug -DLH_FUZZ=ON -DCMAKE_C_COMPILER=clang
LH_FUZZ_SECONDS=${LH_FUZZ_SECONDS:-60} "$LH_ROOT/tests/fuzz/run.sh" "$LH_ROOT/build-fuzz"
