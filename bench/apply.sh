#!/usr/bin/env bash
# `zoi-mirror apply` on a local bundle against the real `zoi sync set URL`,
# in one run of four interleaved hyperfine rounds (target: apply <= 0.5x
# zoi sync set; and <= 20 ms).
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
    ours="env HOME=$work/home XDG_CONFIG_HOME= XDG_STATE_HOME= $bin apply $bundle --no-zoi"
    set -- --prepare "$prepare" "$ours"
    if [ -x "$zoi" ]; then
        zoi_env="XDG_CONFIG_HOME= XDG_STATE_HOME= XDG_DATA_HOME= XDG_CACHE_HOME="
        fresh="env HOME=$work/home $zoi_env $zoi sync set https://git.acme.example/zoi/zoidberg.git"
        warm="env HOME=$work/warm $zoi_env $zoi sync set https://git.acme.example/zoi/zoidberg.git"
        # A home Zoi has set up once; only the config is put back.
        mkdir -p "$work/warm/.config/zoi"
        cp "$work/user.yaml" "$work/warm/.config/zoi/config.yaml"
        env HOME="$work/warm" XDG_CONFIG_HOME= XDG_STATE_HOME= XDG_DATA_HOME= XDG_CACHE_HOME= \
            "$zoi" sync set https://git.acme.example/zoi/zoidberg.git >/dev/null
        set -- "$@" --prepare "$prepare" "$fresh" \
            --prepare "cp $work/user.yaml $work/warm/.config/zoi/config.yaml" "$warm"
    fi
    # hyperfine times one command's runs, then the next's: a machine that
    # slows down meanwhile (a neighbour, writeback) moves the ratio. So the
    # runs are split into rounds, the order reversed every other round, and
    # the medians taken over all rounds' runs.
    rounds=4
    per_round=$(( (runs + rounds - 1) / rounds ))
    measured=$(( per_round * rounds ))
    r=0
    while [ "$r" -lt "$rounds" ]; do
        if [ $((r % 2)) -eq 0 ]; then
            order=("$@")
        else
            # The (--prepare P COMMAND) triples, last first.
            order=()
            n=$#
            args=("$@")
            while [ "$n" -gt 0 ]; do
                order+=("${args[n - 3]}" "${args[n - 2]}" "${args[n - 1]}")
                n=$((n - 3))
            done
        fi
        hyperfine --runs "$per_round" --warmup 5 -N --style basic \
            --export-json "$work/h$r.json" "${order[@]}" >&2
        r=$((r + 1))
    done
    medians=$(python3 - "$work" "$rounds" "$ours" "${fresh:-}" "${warm:-}" <<'PY'
import json, statistics, sys
work, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
times = {n: [] for n in names if n}
ratios = []
for r in range(rounds):
    res = {x["command"]: x for x in json.load(open(f"{work}/h{r}.json"))["results"]}
    for n in times:
        times[n] += res[n]["times"]
    if names[1]:
        ratios.append(res[names[0]]["median"] / res[names[1]]["median"])
out = ["%.2f" % (statistics.median(times[n]) * 1000) if n else "" for n in names]
print(" ".join(out + ["/".join("%.2f" % x for x in ratios)]))
PY
)
    median_ms=$(echo "$medians" | cut -d' ' -f1)
    if [ -x "$zoi" ]; then
        zoi_ms=$(echo "$medians" | cut -d' ' -f2)
        warm_ms=$(echo "$medians" | cut -d' ' -f3)
        round_ratios=$(echo "$medians" | cut -d' ' -f4)
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

echo "apply on a local bundle: median ${median_ms} ms over ${measured:-$runs} runs (target <= 20 ms)"
if [ -n "$zoi_ms" ]; then
    echo "zoi sync set URL (same fresh home, same prepare): median ${zoi_ms} ms"
    echo "zoi sync set URL (home zoi already set up, for reference): median ${warm_ms} ms"
    echo "apply / zoi sync set in each of the $rounds rounds: $round_ratios"
    python3 -c "import sys; r = float(sys.argv[1]) / float(sys.argv[2]); print('apply / zoi sync set: %.2fx (target <= 0.5x: %s)' % (r, 'met' if r <= 0.5 else 'NOT met'))" "$median_ms" "$zoi_ms"
fi
echo "load average:$(uptime | sed 's/.*load average://')"
