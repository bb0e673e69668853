#!/usr/bin/env bash
# Builds the flow command and runs an example workflow (default examples/hello.flow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target flow
example="${1:-examples/hello.flow}"
shift || true
exec build/flow run "$example" --arg team=platform "$@"
