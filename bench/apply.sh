#!/bin/sh
# `zoi-mirror apply` on a local bundle against the real `zoi sync set URL`,
# in one hyperfine run (target: apply <= 0.5x zoi sync set; and <= 20 ms).
#
# Each run applies the shipped example bundle to a fresh temp home holding a
# realistic user config, without zoi (--no-zoi), so what is measured is
# zoi-mirror itself: verifying bundle.json and the files it uses, reading
# and merging the config, backup, state and the atomic, flushed writes.
#
# The peer: one `zoi sync set URL` (Zoi 1.29.4) on the same fresh home, with
# the same prepare step (the home removed and the config put back before
# every run of either). On a fresh home Zoi also does its first-run set-up
# (writes two PGP keys under ~/.local/share/zoi, creates its plugin dir),
# then rewrites config.yaml in place (O_TRUNC, no temp file, no fsync): a
# crash mid-write leaves it torn, which apply never does, and which costs
# apply three waits for the disk cache. Zoi on a home it has already set up
# is timed too, for reference only (the ratio is the fresh-home one).
#
# Figures on a shared machine are noisy: the load average is printed with
# them; compare runs from one sitting.
#
#   bench/apply.sh [RUNS]      (default 200)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-200}

cargo build --release --quiet
bin=$PWD/target/release/zoi-mirror
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" build -c examples/acme/mirror.toml -o "$work/dist" >/dev/null
# Both contenders wait on the disk (apply's flushes, either one's new
# directories and files): write out what earlier work left dirty first, or
# a bench run right after one that wrote GiBs measures that writeback.
sync
bundle="$work/dist/acme-mirror-1.2.0"
cat > "$work/user.yaml" <<'YAML'
# a user's config with comments and unrelated settings
telemetry_enabled: false
repos: [core, extra]
package_managers: [apt]
pkg_dirs:
  - /mnt/usb
jobs: 8
versions: {hello: 1.0.0}
YAML

reset() {
    rm -rf "${work:?}/home"
    mkdir -p "$work/home/.config/zoi"
    cp "$work/user.yaml" "$work/home/.config/zoi/config.yaml"
}

# The real zoi (the one the e2e tests use), for the comparison: one
# `zoi sync set URL` on the same fresh home edits one key of the config.
zoi=${ZOI:-$HOME/.cache/zoi-mirror/zoi-1.29.4/bin/zoi}
zoi_ms=""
warm_ms=""
if command -v hyperfine >/dev/null 2>&1; then
    prepare="sh -c 'rm -rf $work/home && mkdir -p $work/home/.config/zoi && cp $work/user.yaml $work/home/.config/zoi/config.yaml'"
    set -- --prepare "$prepare" "env HOME=$work/home XDG_CONFIG_HOME= XDG_STATE_HOME= $bin apply $bundle --no-zoi"
    if [ -x "$zoi" ]; then
        zoi_env="XDG_CONFIG_HOME= XDG_STATE_HOME= XDG_DATA_HOME= XDG_CACHE_HOME="
        set -- "$@" --prepare "$prepare" "env HOME=$work/home $zoi_env $zoi sync set https://git.acme.example/zoi/zoidberg.git"
        # A home Zoi has set up once; only the config is put back.
        mkdir -p "$work/warm/.config/zoi"
        cp "$work/user.yaml" "$work/warm/.config/zoi/config.yaml"
        env HOME="$work/warm" XDG_CONFIG_HOME= XDG_STATE_HOME= XDG_DATA_HOME= XDG_CACHE_HOME= \
            "$zoi" sync set https://git.acme.example/zoi/zoidberg.git >/dev/null
        set -- "$@" --prepare "cp $work/user.yaml $work/warm/.config/zoi/config.yaml" \
            "env HOME=$work/warm $zoi_env $zoi sync set https://git.acme.example/zoi/zoidberg.git"
    fi
    hyperfine --runs "$runs" --warmup 5 -N --export-json "$work/h.json" "$@" >&2
    median() {
        python3 -c "import json,sys; print('%.2f' % (json.load(open(sys.argv[1]))['results'][int(sys.argv[2])]['median']*1000))" "$work/h.json" "$1"
    }
    median_ms=$(median 0)
    if [ -x "$zoi" ]; then
        zoi_ms=$(median 1)
        warm_ms=$(median 2)
    fi
else
    times=""
    i=0
    while [ "$i" -lt "$runs" ]; do
        reset
        t0=$(date +%s%N)
        HOME=$work/home XDG_CONFIG_HOME='' XDG_STATE_HOME='' "$bin" apply "$bundle" --no-zoi >/dev/null 2>&1
        t1=$(date +%s%N)
        times="$times $(( (t1 - t0) / 1000 ))"
        i=$((i + 1))
    done
    median_ms=$(echo "$times" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {printf "%.2f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)/1000}')
fi

echo "apply on a local bundle: median ${median_ms} ms over $runs runs (target <= 20 ms)"
if [ -n "$zoi_ms" ]; then
    echo "zoi sync set URL (same fresh home, same prepare): median ${zoi_ms} ms"
    echo "zoi sync set URL (home zoi already set up, for reference): median ${warm_ms} ms"
    python3 -c "import sys; r = float(sys.argv[1]) / float(sys.argv[2]); print('apply / zoi sync set: %.2fx (target <= 0.5x: %s)' % (r, 'met' if r <= 0.5 else 'NOT met'))" "$median_ms" "$zoi_ms"
fi
echo "load average:$(uptime | sed 's/.*load average://')"
