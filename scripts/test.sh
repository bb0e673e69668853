#!/usr/bin/env bash
# Builds Flow and runs every test: unit, golden end-to-end, CLI and conformance tests in a
# release build, then the same tests again with ASan and UBSan under clang, and each fuzz
# target for FLOW_FUZZ_SECONDS (default 30). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFLOW_TEST_HOOKS=ON  # the crash tests need FLOW_CRASH_AT
cmake --build build -j2
ctest --test-dir build -j2 --output-on-failure
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DFLOW_FUZZ=ON -DFLOW_TEST_HOOKS=ON \
  -DFLOW_FUZZ_SECONDS="${FLOW_FUZZ_SECONDS:-30}"
cmake --build build-fuzz -j2
ctest --test-dir build-fuzz -j2 --output-on-failure
