#!/usr/bin/env bash
# `zoi-mirror bin sync` against `xargs -P 16 curl` over the same URL list,
# in one run (target: bin sync at least as fast as the faster peer while
# also verifying every SHA-512; peak RSS independent of archive size).
#
# Upstream: a loopback nginx serving archives in the real Zoidberg `{id}`
# layout with their .hash/.size/.files. Two sets: many mid-size archives
# (TOTAL_MB spread over COUNT archives) and a few big ones (BIG x BIG_MB),
# to show that memory does not grow with archive size. Each set also prints
# the wall time of SHA-512 alone over its archives (openssl, a file per
# core): a verifying sync cannot finish sooner on this machine.
#
#   bench/binsync.sh    (COUNT=300 TOTAL_MB=1024 BIG=2 BIG_MB=512 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-300}
total_mb=${TOTAL_MB:-1024}
big=${BIG:-2}
big_mb=${BIG_MB:-512}
# shellcheck source=bench/lib.sh
. bench/lib.sh
require nginx curl openssl

echo "generating $count archives ($total_mb MiB) and $big x $big_mb MiB ..." >&2
gen_archives mid "$count" $(( total_mb * 1048576 / count ))
gen_archives big "$big" $(( big_mb * 1048576 ))

start_nginx "$work/www"
port=$nginx_port

upstream_yaml "$port" > "$work/upstream.yaml"
write_spec "url = 'https://git.example.invalid/z.git'
upstream_repo_yaml = '$work/upstream.yaml'
[[registry.tiers]]
name = 'bench'" \
    "url = 'https://bin.example.invalid/pkgs'
platforms = ['linux-amd64']"

# The generated archives carry no signature, and upstream's key URL is not
# reachable from here: the bench's upstream declares no keys (its `pgp:`
# list is dropped) and --allow-unsigned, so what is timed is download,
# SHA-512 and placement. Signed upstreams are verified after the download,
# reading the file once more.
run_set() { # set-name
    local set=$1
    sync 2>/dev/null || true
    /usr/bin/time -f '%e %M' -o "$work/t.zm" "$bin" bin sync -c "$work/mirror.toml" --index "$work/$set.json" \
        --dest "$work/dest-$set" --concurrency 16 --allow-unsigned --format json > "$work/zm-$set.json"
    read -r t_zm rss_zm < "$work/t.zm"
    mkdir -p "$work/curl-$set"
    sed "s#^#http://127.0.0.1:$port#" "$work/$set.urls" > "$work/$set.full"
    sync 2>/dev/null || true
    /usr/bin/time -f '%e' -o "$work/t.curl" sh -c "cd '$work/curl-$set' && xargs -P 16 -n 1 curl -s -f -O < '$work/$set.full'"
    t_curl=$(cat "$work/t.curl")
    t_floor=$(hash_floor "$set")
    python3 - "$set" "$t_zm" "$rss_zm" "$t_curl" "$work/zm-$set.json" "$t_floor" <<'PY'
import json, os, sys
name, t_zm, rss, t_curl, rep = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
t_floor = float(sys.argv[6])
d = json.load(open(rep))["totals"]
mib = d["bytes"] / 1048576
print(f"[{name}] {d['downloaded']} archives, {mib:.0f} MiB, failed {d['failed']}")
print(f"  zoi-mirror bin sync (verifies SHA-512): {t_zm:6.2f} s  {mib / t_zm:7.1f} MiB/s  peak RSS {rss / 1024:.1f} MiB")
print(f"  xargs -P 16 curl (no verification):     {t_curl:6.2f} s  {mib / t_curl:7.1f} MiB/s")
print(f"  SHA-512 alone (openssl, {os.cpu_count()} files at once): {t_floor:6.2f} s  = {t_floor / t_curl:.2f}x curl, the least any verifying sync can take here")
print(f"  bin sync / curl wall time: {t_zm / t_curl:.2f}x (target <= 1.0x)")
PY
}
run_set mid
run_set big
