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
