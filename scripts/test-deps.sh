#!/bin/sh
# Installs what the test suite needs on a Debian-like machine, skipping
# everything already present. Safe to run again.
set -eu

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

need=""
have lua5.4 || have lua || need="$need lua5.4"
have git || need="$need git"
have nginx || need="$need nginx-light"
have sha512sum || need="$need coreutils"

if [ -n "$need" ]; then
    echo "test-deps: installing$need" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2
fi
