#!/usr/bin/python3
"""The HTTP front under wrk, beside nginx as a keep-alive proxy, same upstream, same run
(release build; everything on 127.0.0.1). wrk drives reckerd's TCP listener with
absolute-form requests (as HTTP_PROXY clients send them) and nginx's proxy with
origin-form ones; both proxies keep pooled HTTP/1.1 connections to one nginx upstream
(1 worker) serving a 23-byte file. Requests/s from wrk; proxy CPU per request from
/proc/PID/stat (user + system) of reckerd, or of the proxy nginx's one worker. The same
daemon under `recker-load` (reckerd's own protocol over its Unix socket, one request in
flight per connection, as wrk's) gives the engine's share, so the front's own cost shows.
Prints a markdown table. BENCH_RUNS (default 3) runs of BENCH_SECONDS (default 4) each."""
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, run, spawn, stop_children, wait_port, wait_unix  # noqa: E402
from bench import cpu_seconds, summary  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECKERD = os.path.join(ROOT, ".build", "release", "reckerd")
LOAD = os.path.join(ROOT, ".build", "release", "recker-load")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
CONNECTIONS = (64, 256)


def nginx(d, name, body):
    conf = os.path.join(d, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {d}/{name}.pid; error_log {d}/{name}.err warn;
events {{ worker_connections 8192; }}
http {{ access_log off; keepalive_timeout 300s; keepalive_requests 10000000;
  client_body_temp_path {d}/{name}1; proxy_temp_path {d}/{name}2; fastcgi_temp_path {d}/{name}3;
  uwsgi_temp_path {d}/{name}4; scgi_temp_path {d}/{name}5;
  {body} }}
""")
    master = spawn(["nginx", "-c", conf, "-e", os.path.join(d, f"{name}.err")])
    return master


def wrk(url, connections, script=None):
    args = ["wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s"] + (["-s", script] if script else []) + [url]
    text = run(args).stdout
    done = int([line for line in text.splitlines() if "requests in" in line][0].split()[0])
    errors = 0
    for line in text.splitlines():
        if "Non-2xx" in line:
            errors += int(line.split()[-1])
        if "Socket errors" in line:
            errors += sum(int(x.split()[-1]) for x in line.split(":", 1)[1].split(","))
    return done, errors


def measure(url, pids, connections, script=None):
    rows = []
    for _ in range(RUNS):
        before = sum(cpu_seconds(p) for p in pids)
        done, errors = wrk(url, connections, script)
        used = sum(cpu_seconds(p) for p in pids) - before
        rows.append((done / SECONDS, used / max(1, done) * 1e6, errors))
    return {"rps": summary([r[0] for r in rows]), "cpu us": summary([r[1] for r in rows]), "errors": sum(r[2] for r in rows)}


def measure_binary(sock, target, pid, connections):
    rows = []
    for _ in range(RUNS):
        before = cpu_seconds(pid)
        r = json.loads(run([LOAD, "--socket", sock, "--url", target, "--connections", str(connections), "--seconds", str(SECONDS)]).stdout)
        used = cpu_seconds(pid) - before
        rows.append((r["rps"], used / max(1, r["requests"]) * 1e6, r["errors"]))
    return {"rps": summary([r[0] for r in rows]), "cpu us": summary([r[1] for r in rows]), "errors": sum(r[2] for r in rows)}


def main():
    if not os.access(RECKERD, os.X_OK) or not os.access(LOAD, os.X_OK):
        sys.exit(f"no release build at {RECKERD}: run `swift build -c release` first")
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} is not installed (scripts/install-deps.sh test {tool})")
    d = tempfile.mkdtemp(prefix="reckerd-bench-http-")
    os.chmod(d, 0o755)
    try:
        www = os.path.join(d, "www")
        os.makedirs(www)
        with open(os.path.join(www, "n.txt"), "w") as f:
            f.write("reckerd benchmark body\n")
        os.chmod(www, 0o755)
        os.chmod(os.path.join(www, "n.txt"), 0o644)
        upstream, proxy_port, front_port = free_port(), free_port(), free_port()
        nginx(d, "upstream", f"server {{ listen 127.0.0.1:{upstream} backlog=4096; root {www}; }}")
        wait_port(upstream)
        master = nginx(d, "proxy", f"""upstream plain {{ server 127.0.0.1:{upstream}; keepalive 512; }}
  server {{ listen 127.0.0.1:{proxy_port} backlog=4096;
    location / {{ proxy_pass http://plain; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}""")
        wait_port(proxy_port)
        workers = [int(x) for x in run(["pgrep", "-P", str(master.pid)]).stdout.split()]
        config = os.path.join(d, "reckerd.json")
        with open(config, "w") as f:
            json.dump({"logLevel": "error", "agent": {"connections": 64, "keepAliveTimeout": 120000},
                       "http": {"enabled": True, "listen": f"127.0.0.1:{front_port}"}}, f)
        sock = os.path.join(d, "reckerd.sock")
        daemon = spawn([RECKERD, "--config", config, "--socket", sock])
        wait_unix(sock)
        wait_port(front_port)
        target = f"http://127.0.0.1:{upstream}/n.txt"
        script = os.path.join(d, "proxy.lua")
        with open(script, "w") as f:
            f.write(f'wrk.path = "{target}"\n')

        # Warm the pools.
        wrk(f"http://127.0.0.1:{front_port}", 64, script)
        wrk(f"http://127.0.0.1:{proxy_port}/n.txt", 64)
        rows = []
        for c in CONNECTIONS:
            rows.append(("reckerd HTTP front (TCP listener)", c, measure(f"http://127.0.0.1:{front_port}", [daemon.pid], c, script)))
            rows.append(("nginx keep-alive proxy (1 worker)", c, measure(f"http://127.0.0.1:{proxy_port}/n.txt", workers, c)))
            rows.append(("reckerd binary protocol (recker-load, Unix socket)", c, measure_binary(sock, target, daemon.pid, c)))

        nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
        out = [f"{os.cpu_count()} cores, {platform.platform()}, nginx {nginx_version}, wrk -t1 -d{SECONDS}s, "
               f"median of {RUNS} runs (min-max); upstream: nginx, 1 worker, 23-byte file, plain HTTP/1.1 on loopback.", "",
               "| proxy | client connections | requests/s | proxy CPU per request | errors |",
               "|---|---|---|---|---|"]
        for name, c, m in rows:
            r, u = m["rps"], m["cpu us"]
            out.append(f"| {name} | {c} | {r['median']:.0f} ({r['min']:.0f}-{r['max']:.0f}) | "
                       f"{u['median']:.1f} µs ({u['min']:.1f}-{u['max']:.1f}) | {m['errors']} |")
        print("\n".join(out))
        if "--append" in sys.argv:
            # make bench: a section of docs/BENCHMARKS.md, which bench.py has just written.
            with open(sys.argv[sys.argv.index("--append") + 1], "a") as f:
                f.write("\n## HTTP front (wrk through reckerd's HTTP/1.1 proxy front beside nginx as a proxy)\n\n"
                        "Made by `/usr/bin/python3 bench/http_front.py` (release build) in the same `make bench` run. "
                        "wrk drives reckerd's TCP listener with absolute-form requests (as `HTTP_PROXY` clients send them) "
                        "and nginx's proxy with origin-form ones; both keep pooled HTTP/1.1 connections to one nginx upstream. "
                        "The same daemon under `recker-load` (its own protocol) gives the engine's share, so the front's own "
                        "cost shows.\n\n" + "\n".join(out) + "\n")
    finally:
        stop_children()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
