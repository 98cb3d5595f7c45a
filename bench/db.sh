#!/usr/bin/env bash
# A no-op `zoi-mirror db sync` against a plain no-op `git fetch` of the same
# upstream, in one run (target: <= 1.2x).
#
# Upstream and target are bare repositories served by a `git daemon` on
# loopback; the upstream has COMMITS commits touching FILES files. Both
# contenders start from an up-to-date clone, so what is timed is the cost
# of finding out that nothing changed.
#
#   bench/db.sh [RUNS]    (default 30; FILES=2000 COMMITS=300 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
files=${FILES:-2000}
commits=${COMMITS:-300}
# shellcheck source=bench/lib.sh
. bench/lib.sh
require hyperfine git

export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@b

echo "building an upstream with $files files and $commits commits ..." >&2
mkdir -p "$work/served" "$work/up"
git -C "$work/up" init -q -b main
cp ../shared/fixtures/zoidberg/repo.yaml "$work/up/" 2>/dev/null || printf 'name: Zoidberg\ndescription: d\n' > "$work/up/repo.yaml"
for i in $(seq "$files"); do
    d="$work/up/tier$((i % 8))/pkg$i"
    mkdir -p "$d"
    echo "metadata({ name = \"pkg$i\", version = \"1.0.$i\" })" > "$d/pkg$i.pkg.lua"
done
git -C "$work/up" add . && git -C "$work/up" commit -qm init
for i in $(seq "$commits"); do
    j=$(( (i % files) + 1 ))
    echo "-- rev $i" >> "$work/up/tier$((j % 8))/pkg$j/pkg$j.pkg.lua"
    git -C "$work/up" commit -qam "update $i"
done
git -C "$work/up" tag v1
git clone -q --bare "$work/up" "$work/served/upstream.git"
git init -q --bare -b main "$work/served/target.git"

port=$(free_port)
"$(git --exec-path)/git-daemon" --reuseaddr --export-all --enable=receive-pack --listen=127.0.0.1 --port="$port" \
    --base-path="$work/served" "$work/served" &
bench_pids+=("$!")
for _ in $(seq 50); do git ls-remote "git://127.0.0.1:$port/upstream.git" >/dev/null 2>&1 && break; sleep 0.1; done

write_spec "url = 'git://127.0.0.1:$port/target.git'
upstream = 'git://127.0.0.1:$port/upstream.git'" \
    "url = 'https://bin.example.com/pkgs'"

# Warm both: the first sync pushes everything; the peer clones.
"$bin" db sync -c "$work/mirror.toml" --work "$work/cache/upstream.git" >/dev/null
git clone -q --mirror "git://127.0.0.1:$port/upstream.git" "$work/peer.git"

hyperfine --runs "$runs" --warmup 3 -N --export-json "$work/h.json" \
    "git -C $work/peer.git fetch --prune --quiet origin" \
    "$bin db sync -c $work/mirror.toml --work $work/cache/upstream.git" >&2

python3 - "$work/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
fetch, sync = r[0]["median"] * 1000, r[1]["median"] * 1000
print(f"plain no-op git fetch:     {fetch:7.1f} ms (median)")
print(f"no-op zoi-mirror db sync:  {sync:7.1f} ms (median)")
print(f"ratio: {sync / fetch:.2f}x (target <= 1.2x)")
PY
