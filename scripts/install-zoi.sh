#!/bin/sh
# Installs the real Zoi client (crates.io `zoi-rs`) at the version pinned in
# scripts/zoi-version, for the end-to-end tests. Cached: skipped when that
# version is already built.
#
#   cache: ${ZOI_MIRROR_CACHE:-$HOME/.cache/zoi-mirror}/zoi-<version>/bin/zoi
set -eu
cd "$(dirname "$0")/.."
version=$(cat scripts/zoi-version)
cache=${ZOI_MIRROR_CACHE:-$HOME/.cache/zoi-mirror}
root="$cache/zoi-$version"
zoi="$root/bin/zoi"

if [ -x "$zoi" ] && "$zoi" --version 2>/dev/null | grep -q "Number: $version"; then
    echo "install-zoi: zoi $version already built at $zoi" >&2
    exit 0
fi

# Build dependencies of zoi-rs (OpenSSL, and clang for bindgen).
need=""
for pkg in libssl-dev pkg-config clang libclang-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
    echo "install-zoi: installing$need" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2
fi

echo "install-zoi: building zoi-rs $version (takes a while, once)" >&2
# --locked pins zoi's own lock file; when the registry lacks one of its exact
# versions, fall back to resolving compatible ones.
cargo install zoi-rs --version "$version" --root "$root" --locked >&2 \
    || cargo install zoi-rs --version "$version" --root "$root" >&2
"$zoi" --version >&2
