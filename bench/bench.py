#!/usr/bin/python3
"""reckerd benchmarks (make bench): W1-W6 against fresh curl, in-process reuse and an nginx
proxy, with 20 ms of round-trip latency injected by bench/relay.py. All traffic stays on
127.0.0.1. Writes docs/BENCHMARKS.md and docs/benchmarks.png."""
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, run, spawn, stop_children, wait_port, wait_unix  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
DELAY_MS = 10
RECKER = os.path.join(BIN, "recker")
RECKERD = os.path.join(BIN, "reckerd")
LOAD = os.path.join(BIN, "recker-load")
CURL814 = os.path.join(ROOT, ".build-curl", "bench", "curl")
CURL814_LIB = os.path.join(ROOT, ".build-curl", "bench", "lib")
results = {}
verdicts = []


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def verdict(name, met, figure):
    verdicts.append((name, "MET" if met else "MISSED", figure))
    print(f"{'MET   ' if met else 'MISSED'} {name}: {figure}", flush=True)


class Setup:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="reckerd-bench-")
        os.chmod(self.dir, 0o755)
        d = self.dir
        www = os.path.join(d, "www")
        os.makedirs(www)
        with open(os.path.join(www, "n.txt"), "w") as f:
            f.write("reckerd benchmark body\n")
        with open(os.path.join(www, "big"), "wb") as f:
            f.truncate(1 << 30)
        for p in [www] + [os.path.join(www, x) for x in os.listdir(www)]:
            os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        run(f"""cd {d} && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout s.key -out s.csr -subj /CN=localhost &&
            openssl x509 -req -in s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out s.pem -days 2 -extfile san.ext &&
            chmod 644 s.key s.pem ca.pem""")
        self.ca = os.path.join(d, "ca.pem")
        self.h2, self.h1, self.plain, self.proxy_port = free_port(), free_port(), free_port(), free_port()
        self.warm_ports = [free_port() for _ in range(10)]
        self.proxy_sock = os.path.join(d, "proxy.sock")
        self.r2, self.r1 = free_port(), free_port()
        warm_listens = "\n".join(f"listen 127.0.0.1:{p};" for p in self.warm_ports)
        conf = f"""
worker_processes 2;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  log_format conn '$connection $server_port';
  access_log off;
  client_body_temp_path {d}/t1; proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3; uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  http2_max_concurrent_streams 256;
  ssl_protocols TLSv1.3;
  ssl_certificate {d}/s.pem;
  ssl_certificate_key {d}/s.key;
  server {{ listen 127.0.0.1:{self.h2} ssl http2; root {www}; access_log {d}/h2.log conn; }}
  server {{ listen 127.0.0.1:{self.h1} ssl; root {www}; access_log {d}/h1.log conn; }}
  server {{ listen 127.0.0.1:{self.plain}; {warm_listens} root {www}; }}
  upstream delayed {{ server 127.0.0.1:{self.r1}; keepalive 64; }}
  upstream direct {{ server 127.0.0.1:{self.h1}; keepalive 512; }}
  server {{
    listen unix:{self.proxy_sock};
    location / {{
      proxy_pass https://delayed; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_ssl_protocols TLSv1.3; proxy_ssl_verify on; proxy_ssl_trusted_certificate {self.ca};
      proxy_ssl_name localhost; proxy_ssl_server_name on; proxy_ssl_session_reuse on;
    }}
  }}
  server {{
    listen 127.0.0.1:{self.proxy_port};
    location / {{
      proxy_pass https://direct; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_ssl_protocols TLSv1.3; proxy_ssl_verify on; proxy_ssl_trusted_certificate {self.ca};
      proxy_ssl_name localhost; proxy_ssl_server_name on; proxy_ssl_session_reuse on;
    }}
  }}
}}
"""
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(conf)
        spawn(["nginx", "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "error.log")])
        wait_port(self.plain)
        relay = os.path.join(ROOT, "bench", "relay.py")
        spawn(["/usr/bin/python3", relay, str(self.r2), str(self.h2), str(DELAY_MS)])
        spawn(["/usr/bin/python3", relay, str(self.r1), str(self.h1), str(DELAY_MS)])
        wait_port(self.r2)
        wait_port(self.r1)
        wait_unix(self.proxy_sock)
        os.chmod(self.proxy_sock, 0o666)

    def daemon(self, name, extra=None, binary=RECKERD):
        sock = os.path.join(self.dir, f"{name}.sock")
        config = {"tls": {"caFile": self.ca}, "logLevel": "error", "agent": {"connections": 64, "keepAliveTimeout": 120000}}
        config.update(extra or {})
        path = os.path.join(self.dir, f"{name}.json")
        with open(path, "w") as f:
            json.dump(config, f)
        p = spawn([binary, "--config", path, "--socket", sock])
        wait_unix(sock)
        return p, sock

    def stats(self, sock):
        return json.loads(run([RECKER, "--socket", sock, "stats", "--json"]).stdout)


def url(port, path="/n.txt"):
    return f"https://localhost:{port}{path}"


def measure_rtt(s):
    out = run(["curl", "-s", "-o", "/dev/null", "-o", "/dev/null", "--cacert", s.ca, "-w", "%{time_total}\n",
               url(s.r1), url(s.r1)]).stdout.split()
    return float(out[1]) * 1000


def w1(s, sock):
    target = url(s.r2)
    loops = {
        "reckerd (100 recker processes)": f"for i in $(seq 100); do {RECKER} --socket {sock} -s -o /dev/null {target}; done",
        "fresh curl x100": f"for i in $(seq 100); do curl -s -o /dev/null --cacert {s.ca} {target}; done",
        "one curl, 100 URLs (in-process floor)": "curl -s --cacert " + s.ca + " " + " ".join([target] * 100) + " > /dev/null",
        "nginx proxy + curl --unix-socket x100": f"for i in $(seq 100); do curl -s -o /dev/null --unix-socket {s.proxy_sock} http://localhost/n.txt; done",
        "100 /bin/true (starting 100 processes, no request)": "for i in $(seq 100); do /bin/true; done",
    }
    run([RECKER, "--socket", sock, "-s", "-o", "/dev/null", target])  # the pool is warm, as it is for a script
    timed(loops["nginx proxy + curl --unix-socket x100"])  # so is nginx's upstream keepalive
    data = {k: [] for k in loops}
    for _ in range(RUNS):
        for name, cmd in loops.items():
            data[name].append(timed(cmd))
    results["W1"] = {k: summary(v) for k, v in data.items()}
    r = results["W1"]
    ours = r["reckerd (100 recker processes)"]["median"]
    fresh = r["fresh curl x100"]["median"] / ours
    floor = ours / r["one curl, 100 URLs (in-process floor)"]["median"]
    proxy = r["nginx proxy + curl --unix-socket x100"]["median"] / ours
    verdict("W1 >= 3x faster than fresh curl", fresh >= 3, f"{fresh:.2f}x")
    verdict("W1 <= 1.10x the in-process floor", floor <= 1.10, f"{floor:.3f}x")
    spawns = r["100 /bin/true (starting 100 processes, no request)"]["median"]
    verdict("W1 <= 1.05x the in-process floor", floor <= 1.05,
            f"{floor:.3f}x; starting 100 processes alone costs {spawns:.0f} ms here "
            f"({spawns / r['one curl, 100 URLs (in-process floor)']['median'] * 100:.1f} % of the floor)")
    verdict("W1 faster than nginx proxy + curl", proxy > 1, f"{proxy:.2f}x")


def w2(s, rtt):
    data = {"reckerd batch h2": [], "reckerd batch h1.1": [], "200 fresh curls (xargs -P 50)": []}
    conns = {"reckerd batch h2": [], "reckerd batch h1.1": []}
    for port, name in [(s.r2, "reckerd batch h2"), (s.r1, "reckerd batch h1.1")]:
        listfile = os.path.join(s.dir, f"batch-{port}.txt")
        with open(listfile, "w") as f:
            f.write("\n".join([url(port)] * 200) + "\n")
        for i in range(RUNS):
            # A fresh daemon each run: the batch pays its own handshakes, as the floor does.
            p, sock = s.daemon(f"w2-{port}-{i}", {"agent": {"connections": 10, "keepAliveTimeout": 120000}})
            data[name].append(timed(f"{RECKER} --socket {sock} batch -c 50 {listfile} > /dev/null"))
            conns[name].append(s.stats(sock)["connections_created"])
            p.terminate()
            p.wait()
    urls = os.path.join(s.dir, "curl-urls.txt")
    with open(urls, "w") as f:
        f.write("\n".join([url(s.r2)] * 200) + "\n")
    for _ in range(RUNS):
        data["200 fresh curls (xargs -P 50)"].append(
            timed(f"xargs -P 50 -n 1 curl -s -o /dev/null --cacert {s.ca} < {urls}"))
    results["W2"] = {k: summary(v) for k, v in data.items()}
    results["W2 connections"] = {k: max(v) for k, v in conns.items()}
    floor = (2 + math.ceil(200 / 50)) * rtt
    results["W2 floor ms"] = floor
    h2 = results["W2"]["reckerd batch h2"]["median"]
    verdict("W2 h2 batch within 1.3x of its floor", h2 <= 1.3 * floor, f"{h2:.0f} ms vs floor {floor:.0f} ms ({h2 / floor:.2f}x)")
    c = results["W2 connections"]["reckerd batch h2"]
    verdict("W2 h2 batch over <= 2 upstream connections", c <= 2, f"{c}")


def w3(s, sock):
    target = url(s.h2)
    out = {}
    for clients in (64, 256):
        ours, theirs, our_conns, their_conns, our_open = [], [], [], [], []
        for _ in range(RUNS):
            before = s.stats(sock)["connections_created"]
            r = json.loads(run([LOAD, "--socket", sock, "--url", target, "--connections", str(clients), "--seconds", "3"]).stdout)
            ours.append(r["rps"])
            after = s.stats(sock)
            our_conns.append(after["connections_created"] - before)
            # This domain's own: W1 and W2 left connections to the relay's domains open.
            our_open.append(after["domains"].get(f"localhost:{s.h2}", {}).get("connections_open", 0))
            lines_before = sum(1 for _ in open(os.path.join(s.dir, "h1.log")))
            w = run(["wrk", "-t2", f"-c{clients}", "-d3s", f"http://127.0.0.1:{s.proxy_port}/n.txt"]).stdout
            rps = float([l for l in w.splitlines() if l.startswith("Requests/sec")][0].split()[1])
            theirs.append(rps)
            with open(os.path.join(s.dir, "h1.log")) as f:
                used = {l.split()[0] for l in list(f)[lines_before:]}
            their_conns.append(len(used))
        out[clients] = {"reckerd": summary(ours), "nginx proxy (wrk)": summary(theirs),
                        "reckerd new upstream connections": max(our_conns),
                        "reckerd upstream connections open": max(our_open),
                        "nginx upstream connections used": max(their_conns)}
        ratio = out[clients]["reckerd"]["median"] / out[clients]["nginx proxy (wrk)"]["median"]
        verdict(f"W3 >= nginx proxy req/s at {clients} clients", ratio >= 1, f"{ratio:.2f}x")
        # HTTP/2 at 100 streams a connection (http2.maxConcurrentStreams): 64 clients need
        # one connection, 256 need three; more is over-opening, new ones later are churn.
        needed = math.ceil(clients / 100)
        verdict(f"W3 h2 connections at {clients} clients <= {needed}", max(our_open) <= needed,
                f"{max(our_open)} open, {max(our_conns)} opened in the worst run")
    results["W3"] = out


def w4(s, sock):
    target = f"http://127.0.0.1:{s.plain}/n.txt"
    ours50, ours99, c50, c99 = [], [], [], []
    args = ["curl", "-s", "-w", "%{time_total}\n"]
    for _ in range(2000):
        args += ["-o", "/dev/null", target]
    for _ in range(RUNS):
        r = json.loads(run([LOAD, "--socket", sock, "--url", target, "--connections", "1", "--seconds", "3"]).stdout)
        ours50.append(r["p50_us"])
        ours99.append(r["p99_us"])
        times = sorted(float(x) * 1e6 for x in run(args).stdout.split()[1:])
        c50.append(times[len(times) // 2])
        c99.append(times[int(len(times) * 0.99)])
    results["W4"] = {"reckerd p50 us": summary(ours50), "reckerd p99 us": summary(ours99),
                     "in-process libcurl p50 us": summary(c50), "in-process libcurl p99 us": summary(c99)}
    add50 = statistics.median(ours50) - statistics.median(c50)
    add99 = statistics.median(ours99) - statistics.median(c99)
    results["W4 added"] = {"p50": add50, "p99": add99}
    verdict("W4 p50 added <= 60 us", add50 <= 60, f"{add50:.0f} us")
    verdict("W4 p99 added <= 300 us", add99 <= 300, f"{add99:.0f} us")


def cpu_seconds(pid):
    """User + system CPU time of a process so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def curl_cpu(urls, parallel):
    """One curl process fetching `urls`: requests/s and its own user + sys CPU per request (µs)."""
    path = os.path.join(tempfile.gettempdir(), f"reckerd-bench-urls-{os.getpid()}")
    with open(path, "w") as f:
        for u in urls:
            f.write(f'url = "{u}"\noutput = "/dev/null"\n')
    # libcurl 8.14's own curl, the library reckerd runs on (scripts/fetch-libcurl.sh bench).
    args = [CURL814, "-s", "-K", path] + (["--parallel", "--parallel-immediate", "--parallel-max", str(parallel)] if parallel else [])
    start = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, LD_LIBRARY_PATH=CURL814_LIB))
    _, _, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    os.unlink(path)
    return len(urls) / wall, (usage.ru_utime + usage.ru_stime) / len(urls) * 1e6


def w7(s):
    """CPU per request on the same plain-HTTP upstream (nginx, 1 worker, the 23-byte file):
    reckerd under recker-load, one curl --parallel (libcurl's own floor), nginx as a
    keep-alive proxy (1 worker) under wrk. CPU from /proc of the process under test."""
    target = f"http://127.0.0.1:{s.plain}/n.txt"
    proxy_port = free_port()
    conf = os.path.join(s.dir, "proxy1.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {s.dir}/proxy1.pid; error_log {s.dir}/proxy1.err warn;
events {{ worker_connections 8192; }}
http {{ access_log off; keepalive_timeout 300s; keepalive_requests 10000000;
  client_body_temp_path {s.dir}/p1; proxy_temp_path {s.dir}/p2; fastcgi_temp_path {s.dir}/p3; uwsgi_temp_path {s.dir}/p4; scgi_temp_path {s.dir}/p5;
  upstream plain {{ server 127.0.0.1:{s.plain}; keepalive 512; }}
  server {{ listen 127.0.0.1:{proxy_port} backlog=4096;
    location / {{ proxy_pass http://plain; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
    master = spawn(["nginx", "-c", conf, "-e", os.path.join(s.dir, "proxy1.err")])
    wait_port(proxy_port)
    workers = [int(x) for x in run(["pgrep", "-P", str(master.pid)]).stdout.split()]
    p, sock = s.daemon("cpu")
    out = {}
    run([LOAD, "--socket", sock, "--url", target, "--connections", "64", "--seconds", "1"])
    for clients in (1, 64, 256):
        rows = []
        for _ in range(RUNS):
            before = cpu_seconds(p.pid)
            r = json.loads(run([LOAD, "--socket", sock, "--url", target, "--connections", str(clients), "--seconds", "4"]).stdout)
            used = cpu_seconds(p.pid) - before
            rows.append((r["rps"], used / max(1, r["requests"]) * 1e6, r["errors"]))
        out[f"reckerd {clients}"] = {"rps": summary([x[0] for x in rows]), "cpu us": summary([x[1] for x in rows]),
                                     "errors": sum(x[2] for x in rows)}
    for clients in (64, 256):
        rows = []
        for _ in range(RUNS):
            before = sum(cpu_seconds(w) for w in workers)
            text = run(["wrk", "-t1", f"-c{clients}", "-d4s", f"http://127.0.0.1:{proxy_port}/n.txt"]).stdout
            done = int([l for l in text.splitlines() if "requests in" in l][0].split()[0])
            rows.append((done / 4, (sum(cpu_seconds(w) for w in workers) - before) / done * 1e6))
        out[f"nginx proxy {clients}"] = {"rps": summary([x[0] for x in rows]), "cpu us": summary([x[1] for x in rows])}
    for name, n, parallel in (("curl --parallel-max 64", 20000, 64), ("curl sequential", 5000, 0)):
        rows = [curl_cpu([target] * n, parallel) for _ in range(RUNS)]
        out[name] = {"rps": summary([x[0] for x in rows]), "cpu us": summary([x[1] for x in rows])}
    results["W7"] = out
    floor = out["curl --parallel-max 64"]["cpu us"]["median"]
    floor_rps = out["curl --parallel-max 64"]["rps"]["median"]
    for clients in (64, 256):
        ours = out[f"reckerd {clients}"]
        ratio = ours["cpu us"]["median"] / floor
        verdict(f"W7 CPU per request <= 1.25x libcurl's floor at {clients} clients", ratio <= 1.25,
                f"{ours['cpu us']['median']:.1f} us vs {floor:.1f} us ({ratio:.2f}x); nginx proxy {out[f'nginx proxy {clients}']['cpu us']['median']:.1f} us")
        verdict(f"W7 req/s >= 0.8x one curl --parallel at {clients} clients", ours["rps"]["median"] >= 0.8 * floor_rps,
                f"{ours['rps']['median']:.0f} vs {floor_rps:.0f} ({ours['rps']['median'] / floor_rps:.2f}x); nginx proxy {out[f'nginx proxy {clients}']['rps']['median']:.0f}")
    seq = out["curl sequential"]["cpu us"]["median"]
    one = out["reckerd 1"]["cpu us"]["median"]
    verdict("W7 CPU per request at 1 client <= the sequential curl's", one <= seq, f"{one:.1f} us vs {seq:.1f} us")
    p.terminate()
    master.terminate()


def w8(s):
    """Requests/s on one warm domain before and after clients have named 10,000 others (127.0.x.y
    on a closed port: each fails at once but leaves its name in libcurl's DNS cache): what one
    local user's junk costs everyone else."""
    target = f"http://127.0.0.1:{s.plain}/n.txt"
    p, sock = s.daemon("w8", {"limits": {"maxDomains": 20000}})
    load = [LOAD, "--socket", sock, "--url", target, "--connections", "64", "--seconds", "3"]
    run(load[:-1] + ["1"])
    before = json.loads(run(load).stdout)["rps"]
    closed = free_port()
    path = os.path.join(s.dir, "w8-urls.txt")
    with open(path, "w") as f:
        f.write("".join(f"http://127.0.{i // 250}.{i % 250 + 1}:{closed}/\n" for i in range(10000)))
    subprocess.run([RECKER, "--socket", sock, "batch", "-c", "50", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = json.loads(run(load).stdout)["rps"]
    p.terminate()
    p.wait()
    results["W8"] = {"req/s before": before, "req/s after 10,000 domains": after}
    verdict("W8 req/s after 10,000 other domains >= 0.8x before", after >= 0.8 * before,
            f"{after:.0f} vs {before:.0f} ({after / before:.2f}x)")


def w5(s):
    out = os.path.join(s.dir, "hyperfine.json")
    run(["hyperfine", "-N", "--warmup", "20", "--runs", "300", "--export-json", out, f"{RECKER} --help", "curl --version",
         "/bin/true"])
    with open(out) as f:
        h = json.load(f)["results"]
    results["W5"] = {r["command"]: {"median": r["median"] * 1000, "min": r["min"] * 1000, "max": r["max"] * 1000,
                                    "runs": len(r["times"])} for r in h}
    ours = h[0]["median"] * 1000
    verdict("W5 recker start-up <= 1 ms", ours <= 1.0,
            f"{ours:.2f} ms (curl {h[1]['median'] * 1000:.2f} ms; /bin/true, the process floor here, {h[2]['median'] * 1000:.2f} ms)")


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def w6(s):
    idle, warm, installed, installed_anon = [], [], [], []
    static = os.path.join(ROOT, ".build-static", "release", "reckerd")
    targets = [{"url": f"http://127.0.0.1:{p}/n.txt", "minIdle": 10} for p in s.warm_ports]
    for i in range(RUNS):
        p, sock = s.daemon(f"w6-idle-{i}")
        time.sleep(1)
        idle.append(rss_kib(p.pid) / 1024)
        p.terminate()
        p.wait()
        # The build `make install` puts in place: the Swift runtime linked in.
        p, sock = s.daemon(f"w6-installed-{i}", binary=static)
        time.sleep(1)
        installed.append(rss_kib(p.pid) / 1024)
        installed_anon.append(rss_anon_kib(p.pid) / 1024)
        p.terminate()
        p.wait()
        p, sock = s.daemon(f"w6-warm-{i}", {"warm": targets, "agent": {"connections": 10, "keepAliveTimeout": 120000}})
        deadline = time.time() + 20
        while time.time() < deadline and s.stats(sock)["connections_open"] < 100:
            time.sleep(0.2)
        warm.append(rss_kib(p.pid) / 1024)
        p.terminate()
        p.wait()
    p, sock = s.daemon("w6-stream")
    run([RECKER, "--socket", sock, "-s", "-o", "/dev/null", f"https://localhost:{s.h1}/n.txt"])
    before = rss_kib(p.pid) / 1024
    reader = ("import sys,time\nb=sys.stdin.buffer\nt=time.time();n=0\n"
              "while True:\n d=b.read(1<<20)\n if not d: break\n n+=len(d)\n"
              " ahead=n/16e6-(time.time()-t)\n if ahead>0: time.sleep(ahead)\nprint(n)")
    stream = subprocess.Popen(f"{RECKER} --socket {sock} -s https://localhost:{s.h1}/big | /usr/bin/python3 -c '{reader}'",
                              shell=True, stdout=subprocess.PIPE, text=True)
    peak = before
    while stream.poll() is None:
        peak = max(peak, rss_kib(p.pid) / 1024)
        time.sleep(0.5)
    got = int(stream.stdout.read().strip() or 0)
    p.terminate()
    p.wait()
    results["W6"] = {"idle MiB": summary(idle), "idle MiB, installed build": summary(installed),
                     "idle MiB, installed build, private (RssAnon)": summary(installed_anon),
                     "10 domains x 10 warm MiB": summary(warm),
                     "streaming 1 GiB: before MiB": before, "streaming 1 GiB: peak MiB": peak,
                     "streaming bytes read": got}
    verdict("W6 idle RSS <= 24 MiB", statistics.median(idle) <= 24, f"{statistics.median(idle):.1f} MiB")
    verdict("W6 idle RSS of the installed build <= 16 MiB", statistics.median(installed) <= 16,
            f"{statistics.median(installed):.1f} MiB, of which {statistics.median(installed_anon):.1f} MiB private")
    verdict("W6 streaming growth <= 32 MiB", peak - before <= 32 and got == 1 << 30,
            f"{peak - before:.1f} MiB growth ({got} bytes delivered)")


def fmt(x):
    return f"{x['median']:.1f} ({x['min']:.1f}–{x['max']:.1f})"


def plot(path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, key, title in [(axes[0], "W1", "W1: 100 sequential requests, 20 ms RTT"),
                           (axes[1], "W2", "W2: 200 requests, concurrency 50, 20 ms RTT")]:
        names = list(results[key].keys())
        med = [results[key][n]["median"] for n in names]
        err = [[m - results[key][n]["min"] for n, m in zip(names, med)], [results[key][n]["max"] - m for n, m in zip(names, med)]]
        ax.barh(names, med, xerr=err, color=["#2b7bba"] + ["#999999"] * (len(names) - 1))
        ax.set_xlabel("wall time, ms (median of %d runs, min–max)" % RUNS)
        ax.set_title(title)
        for i, m in enumerate(med):
            ax.text(m, i, f" {m:.0f}", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_report(rtt, elapsed):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = ["# Benchmarks", "",
             f"Made by `make bench` (`/usr/bin/python3 bench/bench.py`, release build) on {time.strftime('%Y-%m-%d')}, "
             f"in {elapsed / 60:.1f} minutes.", "",
             f"Machine: {os.cpu_count()} cores ({cpu}), {platform.platform()}, "
             f"{run('curl --version').stdout.splitlines()[0]} (the fresh `curl` users run), nginx 1.22 as upstream "
             "and as the reference proxy.", "",
             f"reckerd: `{run([RECKERD, '--version']).stdout.strip()}` (libcurl linked in); libcurl's own floor in W7 "
             "is curl 8.14.1 on the same library.", "",
             "Upstreams: nginx on 127.0.0.1 over HTTPS, TLS 1.3, one port HTTP/2, one HTTP/1.1 only. Latency is made by "
             f"`bench/relay.py`, a relay on 127.0.0.1 that holds every chunk {DELAY_MS} ms in each direction and each new "
             "connection one round trip before it connects upstream (this kernel has no netem). "
             f"Measured round trip through it (a request on a warm connection, curl): **{rtt:.1f} ms**. "
             "W3 and W4 go to nginx directly, without the relay.", "",
             f"Every figure is the median of {RUNS} runs, with min–max; ratios compare medians from the same run.", "",
             "![W1 and W2](benchmarks.png)", "", "## Targets", "", "| target | result | figure |", "|---|---|---|"]
    lines += [f"| {n} | **{v}** | {f} |" for n, v, f in verdicts]
    lines += ["", "## W1 sequential CLI: 100 requests, one process each (ms)", "", "| alternative | ms |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in results["W1"].items()]
    lines += ["", "## W2 batch: 200 requests at concurrency 50 (ms)", "", "| alternative | ms | upstream connections |",
              "|---|---|---|"]
    for k, v in results["W2"].items():
        lines.append(f"| {k} | {fmt(v)} | {results['W2 connections'].get(k, 'one per request')} |")
    lines += ["", f"Floor for h2: handshake (TCP + TLS 1.3, 2 RTT) + ⌈200/50⌉ round trips = {results['W2 floor ms']:.0f} ms.",
              "recker's connection-pooling guide publishes, for 100 requests at ~50 ms handshake + ~20 ms request: "
              "pooling 3.4x and pooling + HTTP/2 4.5x faster than no pooling. Here, against 200 fresh curls: "
              f"h1.1 {results['W2']['200 fresh curls (xargs -P 50)']['median'] / results['W2']['reckerd batch h1.1']['median']:.1f}x, "
              f"h2 {results['W2']['200 fresh curls (xargs -P 50)']['median'] / results['W2']['reckerd batch h2']['median']:.1f}x "
              "(a fresh daemon per run, so each batch pays its own handshakes).", ""]
    lines += ["## W3 throughput (requests/s, no injected latency)", "",
              "| clients | reckerd (recker-load, h2 upstream) | nginx proxy (wrk, h1.1 keepalive upstream) | reckerd upstream conns open (opened in the worst run) | nginx upstream conns used |",
              "|---|---|---|---|---|"]
    for c, v in results["W3"].items():
        lines.append(f"| {c} | {fmt(v['reckerd'])} | {fmt(v['nginx proxy (wrk)'])} | {v['reckerd upstream connections open']} ({v['reckerd new upstream connections']}) | "
                     f"{v['nginx upstream connections used']} |")
    lines += ["", "The two load generators differ in protocol, not in shape: `recker-load` (bench/load) drives every "
              "client connection from one epoll thread, each with one request in flight, speaking reckerd's protocol "
              "over the Unix socket; wrk runs 2 threads with event loops over TCP. Both share the machine's 2 cores "
              "with the server under test and nginx.", ""]
    w4 = results["W4"]
    lines += ["## W4 overhead (µs, no injected latency, plain HTTP upstream)", "", "| | p50 | p99 |", "|---|---|---|",
              f"| through reckerd (recker-load, 1 connection) | {fmt(w4['reckerd p50 us'])} | {fmt(w4['reckerd p99 us'])} |",
              f"| in-process libcurl reuse (one curl, 2000 URLs) | {fmt(w4['in-process libcurl p50 us'])} | {fmt(w4['in-process libcurl p99 us'])} |",
              f"| added by reckerd | {results['W4 added']['p50']:.0f} | {results['W4 added']['p99']:.0f} |", ""]
    w7 = results["W7"]
    lines += ["## W7 CPU per request (µs of the process under test, plain HTTP upstream, no injected latency)", "",
              "Same upstream for all: nginx (this run's instance) serving a 23-byte file on 127.0.0.1. reckerd under "
              "`recker-load` (one epoll thread, one request in flight per connection, over the Unix socket); libcurl's "
              "floor is one `curl --parallel --parallel-max 64` process of curl 8.14.1 (the libcurl reckerd runs on) fetching 20,000 URLs (its own user + sys); "
              "nginx 1.22 as a keep-alive proxy with 1 worker under `wrk -t1`. CPU from /proc/PID/stat before and after.", "",
              "| load | requests/s | CPU µs per request |", "|---|---|---|"]
    for k, v in w7.items():
        lines.append(f"| {k} | {fmt(v['rps'])} | {fmt(v['cpu us'])} |")
    lines += [""]
    lines += ["## W5 start-up (ms, hyperfine -N, 300 runs)", "", "| command | median (min–max) |", "|---|---|"]
    lines += [f"| `{k}` | {fmt(v)} |" for k, v in results["W5"].items()]
    w6 = results["W6"]
    w8 = results["W8"]
    lines += ["", "## W8 many domains (requests/s on one warm domain, 64 clients, plain HTTP)", "",
              "| | requests/s |", "|---|---|",
              f"| before | {w8['req/s before']:.0f} |",
              f"| after clients named 10,000 other domains (each failed at once) | {w8['req/s after 10,000 domains']:.0f} |",
              "", "One run each. libcurl keeps a DNS cache entry per name for `limits.dnsCacheTimeout` and walks its "
              "whole cache on every request; reckerd gives each domain a cache of its own.", ""]
    lines += ["", "## W6 memory (RSS, MiB)", "", "| state | MiB |", "|---|---|",
              f"| idle | {fmt(w6['idle MiB'])} |",
              f"| idle, the installed build (`make install`: Swift runtime linked in) | {fmt(w6['idle MiB, installed build'])} |",
              f"| of which private (RssAnon; the rest is shared libraries' pages) | {fmt(w6['idle MiB, installed build, private (RssAnon)'])} |",
              f"| 10 domains x 10 warm connections | {fmt(w6['10 domains x 10 warm MiB'])} |",
              f"| streaming 1 GiB to a 16 MB/s reader: before / peak (one run, about a minute) | "
              f"{w6['streaming 1 GiB: before MiB']:.1f} / {w6['streaming 1 GiB: peak MiB']:.1f} |", ""]
    with open(os.path.join(ROOT, "bench", "analysis.md")) as f:
        lines += [f.read()]
    lines += ["## How to run", "", "```sh", "make bench            # BENCH_RUNS=5 by default", "```", ""]
    with open(os.path.join(ROOT, "docs", "BENCHMARKS.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    started = time.time()
    s = Setup()
    try:
        rtt = statistics.median(measure_rtt(s) for _ in range(5))
        print(f"round trip through the relay: {rtt:.1f} ms", flush=True)
        p, sock = s.daemon("main")
        w5(s)
        w1(s, sock)
        w2(s, rtt)
        w3(s, sock)
        w4(s, sock)
        w6(s)
        w7(s)
        w8(s)
        plot(os.path.join(ROOT, "docs", "benchmarks.png"))
        write_report(rtt, time.time() - started)
        print(json.dumps(results, indent=1, default=str))
    finally:
        stop_children(10)
        shutil.rmtree(s.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
