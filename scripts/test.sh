#!/usr/bin/env bash
# Builds Flow and runs every test: unit, golden end-to-end, CLI and conformance tests in a
# release build, then the same tests again with ASan and UBSan under clang, and each fuzz
# target for FLOW_FUZZ_SECONDS (default 15). Installs what it needs first.
#
# --quick: the developer loop: the release build, then only the unit and golden (label e2e)
# tests; no crash, durable-crash, conformance, sanitizer or fuzz runs (CI runs those).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
case "${1:-}" in
  "") ;;
  --quick) quick=true ;;
  *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
esac
bash scripts/setup.sh
# A whole run compiles the libraries in batches (FLOW_UNITY_BUILD: about half the time of a
# fresh build); --quick compiles file by file, so that an edit recompiles one file.
unity=$($quick && echo OFF || echo ON)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFLOW_TEST_HOOKS=ON -DFLOW_UNITY_BUILD=$unity  # the crash tests need FLOW_CRASH_AT
cmake --build build -j2
if $quick; then
  exec ctest --test-dir build -j2 -L '^(unit|e2e)$' --output-on-failure
fi
ctest --test-dir build -j2 --output-on-failure
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DFLOW_FUZZ=ON -DFLOW_TEST_HOOKS=ON -DFLOW_UNITY_BUILD=ON \
  -DFLOW_FUZZ_SECONDS="${FLOW_FUZZ_SECONDS:-15}"
cmake --build build-fuzz -j2
LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" ctest --test-dir build-fuzz -j2 --output-on-failure
