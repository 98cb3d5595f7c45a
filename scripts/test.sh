#!/bin/sh
# The test command: installs what is missing, then runs every test.
set -eu
cd "$(dirname "$0")/.."
./scripts/test-deps.sh
exec cargo test --locked "$@"
