#!/usr/bin/env bash
# Throughput of `zoi-mirror check` against its peers, in one run.
#
# Serves N packages x 2 platforms (4 URLs each: archive, .hash, .size,
# .files; N=5000 gives 40,000 URLs) from a loopback nginx started here, then
# times on the same URL list:
#   - zoi-mirror check (HEAD for archives, GET + validation for metadata)
#   - wrk on one metadata URL: nginx's ceiling on this machine, run right
#     after zoi-mirror so both meet the same machine
#   - xargs -P 32 curl (one curl per URL, 32 at a time) over the first
#     CURL_SAMPLE URLs (default 4000): a process per URL makes it ~250
#     URLs/s, and a whole 40 k list would take minutes and load the machine
#     for what follows; its rate is the sample's
#   - lychee, when installed (`cargo install lychee`)
# and prints URLs/s, the ratios and zoi-mirror's peak RSS.
# Targets: >= 1.5x the best peer, >= 50 % of the wrk ceiling, peak RSS
# <= 40 MiB.
#
#   bench/check.sh [N]    (default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000}
curl_sample=${CURL_SAMPLE:-4000}

# shellcheck source=bench/lib.sh
. bench/lib.sh
require nginx wrk curl

echo "generating $n packages x 2 platforms ..." >&2
python3 - "$work" "$n" <<'PY'
import hashlib, json, os, sys
work, n = sys.argv[1], int(sys.argv[2])
pkgs = {}
for i in range(n):
    name = f"pkg{i:05d}"
    repo = ["core", "main", "extra"][i % 3]
    version = f"1.{i % 7}.{i % 11}"
    pkgs[f"@{repo}/{name}"] = {"repo": repo, "repo_type": "official", "version": version, "epoch": 0,
        "revision": "1", "description": "bench", "sub_packages": [], "main_sub_packages": [],
        "vuln": [], "dependencies": None}
    for os_, arch in (("linux", "amd64"), ("macos", "arm64")):
        d = os.path.join(work, "www", "pkgs", repo, os_, arch, version)
        os.makedirs(d, exist_ok=True)
        fn = f"{name}-{version}-{os_}-{arch}.zpa"
        data = hashlib.sha512(fn.encode()).digest() * 16
        with open(os.path.join(d, fn), "wb") as f: f.write(data)
        with open(os.path.join(d, fn + ".hash"), "w") as f: f.write(f"{hashlib.sha512(data).hexdigest()}  {fn}\n")
        with open(os.path.join(d, fn + ".size"), "w") as f: f.write(f"down: {len(data)}\ninstall: {len(data) * 2}\n")
        with open(os.path.join(d, fn + ".files"), "w") as f: f.write("${pkgstore}/bin/\n${pkgstore}/bin/" + name)
with open(os.path.join(work, "packages.json"), "w") as f:
    json.dump({"version": "2", "packages": pkgs}, f)
PY

start_nginx "$work/www"
port=$nginx_port

write_spec "url = 'https://git.example.invalid/z.git'" \
    "url = 'http://127.0.0.1:$port/pkgs'
platforms = ['linux-amd64', 'macos-arm64']"
"$bin" build -c "$work/mirror.toml" -o "$work/dist" >/dev/null
bundle="$work/dist/bench-mirror-1.0.0"

# The same URL list for the peers.
python3 - "$work" "$port" <<'PY' > "$work/urls.txt"
import json, sys
work, port = sys.argv[1], sys.argv[2]
pkgs = json.load(open(f"{work}/packages.json"))["packages"]
for pid, p in pkgs.items():
    name = pid.rsplit("/", 1)[1]
    for os_, arch in (("linux", "amd64"), ("macos", "arm64")):
        base = f"http://127.0.0.1:{port}/pkgs/{p['repo']}/{os_}/{arch}/{p['version']}/{name}-{p['version']}-{os_}-{arch}.zpa"
        for suffix in ("", ".hash", ".size", ".files"):
            print(base + suffix)
PY
urls=$(wc -l < "$work/urls.txt")
echo "$urls URLs" >&2

timed() { # label, command... -> prints "seconds rss_kib"
    local label=$1; shift
    /usr/bin/time -f '%e %M' -o "$work/time.$label" "$@" > "$work/out.$label" 2>"$work/err.$label" || true
    cat "$work/time.$label"
}

# Median of three runs: one run is short enough (about a second) for
# scheduler noise to move it by a fifth.
zm_runs=()
for _ in 1 2 3; do
    read -r t rss_zm < <(timed zm "$bin" check --bundle "$bundle" --no-registry --index "$work/packages.json" --format json)
    zm_runs+=("$t")
done
t_zm=$(printf '%s\n' "${zm_runs[@]}" | sort -n | sed -n 2p)
zm_failed=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["counts"]["failed"], d["counts"]["urls"])' "$work/out.zm")
echo "zoi-mirror check: ${t_zm}s median of ${zm_runs[*]} (failed/urls: $zm_failed)" >&2

one=$(sed -n 2p "$work/urls.txt")
wrk -t2 -c64 -d5s "$one" > "$work/wrk.txt"
wrk_rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")

head -n "$curl_sample" "$work/urls.txt" > "$work/urls.sample"
curl_urls=$(wc -l < "$work/urls.sample")
read -r t_curl _ < <(timed curl sh -c "xargs -P 32 -n 1 curl -s -o /dev/null -w '%{http_code}\n' < '$work/urls.sample'")
curl_ok=$(grep -c '^200$' "$work/out.curl" || true)
echo "xargs -P 32 curl: ${t_curl}s for $curl_urls URLs ($curl_ok x 200)" >&2

t_lychee=""
if command -v lychee >/dev/null 2>&1; then
    read -r t_lychee _ < <(timed lychee lychee --no-progress --max-concurrency 64 --host-concurrency 64 --host-request-interval 0s --cache-exclude-status 100.. "$work/urls.txt")
    echo "lychee: ${t_lychee}s" >&2
fi


echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "$t_lychee" ] || echo "lychee: not installed (cargo install lychee), not compared"
python3 - "$urls" "$t_zm" "$t_curl" "${t_lychee:-}" "$wrk_rps" "$rss_zm" "$curl_urls" <<'PY'
import sys
urls = int(sys.argv[1]); t_zm, t_curl = float(sys.argv[2]), float(sys.argv[3])
t_ly = float(sys.argv[4]) if sys.argv[4] else None
wrk = float(sys.argv[5]); rss = int(sys.argv[6]); curl_urls = int(sys.argv[7])
rate = lambda t, n=urls: n / t if t > 0 else float("inf")
rows = [("zoi-mirror check", rate(t_zm)), (f"xargs -P 32 curl ({curl_urls} URLs)", rate(t_curl, curl_urls))]
if t_ly: rows.append(("lychee", rate(t_ly)))
print(f"{'contender':<28} {'URLs/s':>10}")
for name, r in rows: print(f"{name:<28} {r:>10.0f}")
print(f"{'wrk ceiling (1 URL)':<28} {wrk:>10.0f}")
best_peer = max(r for n, r in rows[1:])
print(f"zoi-mirror / best peer: {rate(t_zm) / best_peer:.2f}x (target >= 1.5x)")
print(f"zoi-mirror / wrk ceiling: {100 * rate(t_zm) / wrk:.0f} % (target >= 50 %)")
print(f"zoi-mirror peak RSS: {rss / 1024:.1f} MiB (target <= 40 MiB)")
PY
