#!/usr/bin/python3
"""Where the daemon's CPU per request goes, as W7 measures it, split into user and kernel
time, with its system calls and context switches per request.

    /usr/bin/python3 bench/cpu-split.py [CLIENTS ...] [--seconds S] [--perf]

For each number of clients: a release reckerd (agent.connections 64) before a plain-HTTP
nginx (1 worker, a 20-byte file) on 127.0.0.1, `recker-load` for S seconds (4), the
daemon's utime and stime from /proc/PID/stat before and after. With --perf, a second run
under `perf record` prints the symbols that cost the most per request. Needs a release build
(`make release`), nginx, and perf for --perf."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, spawn, stop_children, wait_port, wait_unix  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
TICK = os.sysconf("SC_CLK_TCK")


def times(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def switches(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as f:
            for line in f:
                if line.endswith("ctxt_switches:\n") or "ctxt_switches:" in line:
                    total += int(line.split()[1])
    return total


def main():
    args = sys.argv[1:]
    seconds = 4
    use_perf = "--perf" in args
    if "--seconds" in args:
        seconds = float(args[args.index("--seconds") + 1])
        del args[args.index("--seconds"):args.index("--seconds") + 2]
    clients = [int(a) for a in args if a.isdigit()] or [1, 64, 256]
    d = tempfile.mkdtemp(prefix="reckerd-cpu-")
    os.chmod(d, 0o755)
    try:
        www = os.path.join(d, "www")
        os.makedirs(www)
        with open(os.path.join(www, "n.txt"), "w") as f:
            f.write("reckerd cpu bench.\n")
        for p in (www, os.path.join(www, "n.txt")):
            os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        port = free_port()
        with open(os.path.join(d, "up.conf"), "w") as f:
            f.write(f"""worker_processes 1; daemon off; pid {d}/up.pid; error_log {d}/up.err warn;
events {{ worker_connections 8192; }}
http {{ access_log off; keepalive_timeout 300s; keepalive_requests 10000000;
  client_body_temp_path {d}/a1; proxy_temp_path {d}/a2; fastcgi_temp_path {d}/a3; uwsgi_temp_path {d}/a4; scgi_temp_path {d}/a5;
  server {{ listen 127.0.0.1:{port} backlog=4096; root {www}; }} }}
""")
        spawn(["nginx", "-c", os.path.join(d, "up.conf"), "-e", os.path.join(d, "up.err")])
        wait_port(port)
        url = f"http://127.0.0.1:{port}/n.txt"
        for n in clients:
            config = os.path.join(d, "r.json")
            with open(config, "w") as f:
                json.dump({"logLevel": "error", "agent": {"connections": 64, "keepAliveTimeout": 120000}}, f)
            sock = os.path.join(d, f"r{n}.sock")
            daemon = spawn([os.path.join(BIN, "reckerd"), "--config", config, "--socket", sock])
            wait_unix(sock)
            load = [os.path.join(BIN, "recker-load"), "--socket", sock, "--url", url, "--connections", str(n)]
            subprocess.run(load + ["--seconds", "1"], capture_output=True, check=True)
            (u0, s0), c0 = times(daemon.pid), switches(daemon.pid)
            r = json.loads(subprocess.run(load + ["--seconds", str(seconds)], capture_output=True, text=True, check=True).stdout)
            (u1, s1), c1 = times(daemon.pid), switches(daemon.pid)
            q = max(1, r["requests"])
            print(f"{n:4d} clients: {r['rps']:8.0f} req/s  CPU per request {(u1 - u0 + s1 - s0) / q * 1e6:6.1f} us "
                  f"(user {(u1 - u0) / q * 1e6:5.1f}, kernel {(s1 - s0) / q * 1e6:5.1f})  "
                  f"context switches per request {(c1 - c0) / q:.3f}", flush=True)
            if use_perf and shutil.which("perf"):
                data = os.path.join(d, f"perf{n}.data")
                rec = subprocess.Popen(["perf", "record", "-F", "4000", "-p", str(daemon.pid), "-o", data, "--", "sleep", str(seconds)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                r = json.loads(subprocess.run(load + ["--seconds", str(seconds)], capture_output=True, text=True, check=True).stdout)
                rec.wait()
                report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "-n", "--stdio"],
                                        capture_output=True, text=True).stdout
                rows = []
                for line in report.splitlines():
                    parts = line.split(None, 2)
                    if len(parts) == 3 and parts[0].endswith("%") and parts[1].isdigit():
                        rows.append((int(parts[1]) / 4000 / max(1, r["requests"]) * 1e6, parts[2].strip()))
                for us, name in sorted(rows, reverse=True)[:25]:
                    print(f"      {us:6.2f} us  {name[:110]}")
            daemon.terminate()
            daemon.wait()
            time.sleep(0.2)
    finally:
        stop_children(5)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
