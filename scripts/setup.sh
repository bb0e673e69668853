#!/usr/bin/env bash
# Installs every Debian package that building, testing, fuzzing and benchmarking Flow needs.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail
packages=(
  cmake g++ make python3 time         # time: /usr/bin/time (tests)
  antlr4 libantlr4-runtime-dev         # grammar tool 4.7.2 + C++ runtime 4.9 (see docs/building.md)
  libleveldb-dev libsnappy-dev         # the embedded store (its CMake config links snappy)
  libsqlite3-dev                       # the index of packed runs (store/run_index.h)
  libpq-dev postgresql                 # the PostgreSQL store (store/pg/) and the server its tests start
  libcurl4-openssl-dev                 # http effect
  libfmt-dev                           # formatting
  nlohmann-json3-dev                   # json.parse (SAX) front end
  libcli11-dev                         # command-line parsing
  libxxhash-dev                        # XXH3 checksums of persisted formats
  libre2-dev                           # re.* (linear-time regular expressions)
  libgtest-dev libgmock-dev            # unit tests
  clang libclang-rt-14-dev             # libFuzzer + ASan/UBSan fuzz targets
  lua5.4                               # benchmark baseline
  pkg-config libcpp-httplib-dev        # flow ui's HTTP server (a module loaded by flow ui only: docs/ui.md)
  chromium                             # flow ui's browser tests (headless, tests/ui)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
