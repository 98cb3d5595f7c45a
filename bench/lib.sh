# shellcheck shell=bash
# Shared plumbing for the bench scripts (sourced, bash): a release build, a
# work dir removed on exit together with every server started here, a free
# loopback port, and a throughput-tuned nginx.

# require TOOL... : exit 3 with a hint when one is missing
require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
            echo "$(basename "$0") needs $tool (apt-get install -y $tool)" >&2
            exit 3
        }
    done
}

cargo build --release --quiet
# shellcheck disable=SC2034  # used by the scripts that source this file
bin=$PWD/target/release/zoi-mirror
work=$(mktemp -d)
bench_pids=()
bench_cleanup() {
    local pid
    for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap bench_cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_nginx ROOT : serves ROOT on a free port; sets nginx_port
start_nginx() {
    local root=$1 user_line="" nginx_bin
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    nginx_port=$(free_port)
    [ "$(id -u)" = 0 ] && user_line="user root root;"
    cat > "$work/nginx.conf" <<CONF
$user_line
worker_processes auto;
daemon off;
error_log $work/error.log warn;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    types { text/plain hash size files; application/zstd zpa; }
    sendfile on;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$nginx_port; root $root; }
}
CONF
    "$nginx_bin" -p "$work" -c "$work/nginx.conf" &
    bench_pids+=("$!")
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" && break; sleep 0.1; done
}

# write_spec REGISTRY BINARIES : $work/mirror.toml for the extension
# "bench-mirror" 1.0.0, the two arguments being the bodies of its
# [registry] and [binaries] tables
write_spec() {
    cat > "$work/mirror.toml" <<TOML
[extension]
name = "bench-mirror"
version = "1.0.0"
description = "bench"
tier = "core"
maintainer = { name = "b", email = "b@example.com" }
[registry]
name = "zoidberg"
$1
[binaries]
$2
TOML
}

# gen_archives SET COUNT SIZE : COUNT archives of SIZE bytes each under
# $work/www/generic in Zoidberg's `{id}` layout (`bench.SET0000`, ...),
# with their .hash/.size/.files, a packages.json index at $work/SET.json
# and the list of their URL paths (archive and sidecars) at $work/SET.urls
gen_archives() { # set-name count size-bytes
    python3 - "$work" "$1" "$2" "$3" <<'PY'
import hashlib, json, os, sys
work, name, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pkgs = {}
block = os.urandom(1 << 20)
for i in range(n):
    pkg, version = f"{name}{i:04d}", "1.0.0"
    d = os.path.join(work, "www", "generic", f"bench.{pkg}", version)
    os.makedirs(d, exist_ok=True)
    fn = f"{pkg}-{version}-linux-amd64.zpa"
    h = hashlib.sha512()
    with open(os.path.join(d, fn), "wb") as f:
        left = size
        seed = hashlib.sha512(fn.encode()).digest()
        while left > 0:
            chunk = (seed + block)[: min(left, len(block) + 64)]
            f.write(chunk); h.update(chunk); left -= len(chunk)
    open(os.path.join(d, fn + ".hash"), "w").write(f"{h.hexdigest()}  {fn}\n")
    open(os.path.join(d, fn + ".size"), "w").write(f"down: {size}\ninstall: {size}\n")
    open(os.path.join(d, fn + ".files"), "w").write("${pkgstore}/bin/" + pkg)
    pkgs[f"@bench/{pkg}"] = {"repo": "bench", "repo_type": "official", "version": version, "epoch": 0,
        "revision": "1", "description": "b", "sub_packages": [], "main_sub_packages": [], "vuln": [], "dependencies": None}
json.dump({"version": "2", "packages": pkgs}, open(os.path.join(work, f"{name}.json"), "w"))
with open(os.path.join(work, f"{name}.urls"), "w") as u:
    for p in pkgs:
        pkg = p.split("/")[1]
        base = f"/generic/bench.{pkg}/1.0.0/{pkg}-1.0.0-linux-amd64.zpa"
        for s in ("", ".hash", ".size", ".files"):
            u.write(base + s + "\n")
PY
}

# upstream_yaml PORT : Zoidberg's own repo.yaml with its archive links on
# the loopback nginx at PORT, and without its `pgp:` keys (bench archives
# are unsigned, and nothing may reach upstream's real key server)
upstream_yaml() {
    sed "s#https://gitlab.com/api/v4/projects/71125308/packages/generic#http://127.0.0.1:$1/generic#" \
        ../shared/fixtures/zoidberg/repo.yaml \
        | awk '/^[a-z]/ { skip = ($0 ~ /^pgp:/) } !skip'
}

# hash_floor SET : seconds `openssl dgst -sha512` (the fastest SHA-512 on
# this machine) takes over SET's archives, one process per file and as
# many at once as there are cores, from the page cache: the wall time no
# verifying sync of SET can beat here, however fast its download
hash_floor() {
    grep '\.zpa$' "$work/$1.urls" | sed "s#^#$work/www#" > "$work/$1.files-list"
    xargs -a "$work/$1.files-list" cat > /dev/null
    /usr/bin/time -f '%e' -o "$work/t.floor" xargs -a "$work/$1.files-list" -P "$(nproc)" -n 1 \
        openssl dgst -sha512 > /dev/null
    cat "$work/t.floor"
}

# group_cpu PGID : CPU-seconds (user + system) used so far by the live
# processes of process group PGID (a server started with setsid)
group_cpu() {
    python3 - "$1" <<'PY'
import os, sys
group, ticks = int(sys.argv[1]), 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if int(f[2]) == group:
        ticks += int(f[11]) + int(f[12])
print(ticks / os.sysconf("SC_CLK_TCK"))
PY
}
