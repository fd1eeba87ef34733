#!/usr/bin/python3
"""reckerd soak (make bench, after bench.py): SOAK_REQUESTS (default 1,000,000) requests from
100 clients that connect, send 1-500 requests each one at a time and leave, a new client
taking each one's place, over 3 domains on 127.0.0.1:

  steady  nginx, HTTPS with HTTP/2, keep-alive for as long as reckerd wants
  idle1s  nginx, HTTPS/1.1, keepalive_timeout 1s: closes connections idle for 1 s; it gets
          traffic in bursts (on 3 s, off 0.5-2.5 s), so its connections do go idle
  reset1  bench/soak_upstream.py, HTTP/1.1, resets 1 % of requests instead of answering

reckerd runs on its shipped defaults (10 connections per domain, keepAliveTimeout 4 s). Its
RSS, descriptors and connection records (the stats document's connections_open, and its TCP
sockets as `ss` sees them) are taken at the start (after a warm-up), the middle and the end,
each time with every client connected and none with a request in flight, and once more after
the clients left and the pools went idle. Client errors are counted by domain and code; only
upstream errors on reset1, no more than it injected, are explained by the injected resets.

Environment: RECKER_BIN_DIR (default .build/release), SOAK_REQUESTS, SOAK_PROCESSES (client
processes, default 4), SOAK_MAX_SECONDS (default 600: the load stops there, and the request
count is then reported as missed), SOAK_POST_PERCENT (share of reset1's requests that are POSTs
with a body, default 10). Appends the "## Soak" section to docs/BENCHMARKS.md.
"""
import asyncio
import json
import multiprocessing
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, run, spawn, stop_children, wait_port, wait_unix  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(os.path.join(ROOT, os.environ.get("RECKER_BIN_DIR", os.path.join(".build", "release"))))
RECKER = os.path.join(BIN, "recker")
RECKERD = os.path.join(BIN, "reckerd")
REQUESTS = int(os.environ.get("SOAK_REQUESTS", "1000000"))
PROCESSES = int(os.environ.get("SOAK_PROCESSES", "4"))
MAX_SECONDS = float(os.environ.get("SOAK_MAX_SECONDS", "600"))
POST_PERCENT = float(os.environ.get("SOAK_POST_PERCENT", "10"))   # of reset1's requests
CLIENTS = 100
SESSION = (1, 500)            # requests per client connection
LEAVE_MID_REQUEST = 0.01      # share of clients that leave with their last request unanswered
RESET_PERCENT = 1.0
WARMUP = max(1000, REQUESTS // 50)
FLAT = 0.05
SETTLE = 0.5                  # s between the last answer and a snapshot (< the 1 s idle close)
CLIENT_TIMEOUT = 60           # s for one request, client side
SMALL = b"reckerd soak body\n"
LARGE = 65536
POST_BODY = b"x" * 100
# Upstream failures the daemon reports for a reset (§5 of docs/PROTOCOL.md).
RESET_CODES = {"UPSTREAM_SEND_FAILED", "UPSTREAM_RECV_FAILED", "UPSTREAM_PROTOCOL"}
CODES = {1: "MALFORMED_FRAME", 2: "FRAME_TOO_LARGE", 3: "BAD_HANDSHAKE", 4: "UNSUPPORTED_VERSION",
         5: "UNKNOWN_FRAME_TYPE", 6: "INVALID_STREAM", 7: "FLOW_CONTROL_ERROR", 8: "TOO_MANY_IN_FLIGHT",
         100: "INVALID_METHOD", 101: "INVALID_URL", 102: "INVALID_HEADER_NAME", 103: "INVALID_HEADER_VALUE",
         104: "FORBIDDEN_HEADER", 105: "UNKNOWN_CRITICAL_OPTION", 106: "BODY_LENGTH_MISMATCH", 200: "DNS_FAILED",
         201: "CONNECT_FAILED", 202: "CONNECT_TIMEOUT", 203: "TLS_FAILED", 204: "TIMEOUT",
         205: "UPSTREAM_SEND_FAILED", 206: "UPSTREAM_RECV_FAILED", 207: "UPSTREAM_PROTOCOL",
         208: "TOO_MANY_REDIRECTS", 209: "UPSTREAM_FAILED", 300: "CANCELLED", 301: "SHUTTING_DOWN",
         302: "QUEUE_FULL", 303: "QUEUE_TIMEOUT", 304: "ACCESS_DENIED", 399: "INTERNAL"}
HELLO, WELCOME, REQUEST_HEAD, REQUEST_BODY = 0x01, 0x02, 0x10, 0x11
RESPONSE_HEAD, RESPONSE_BODY, RESPONSE_END, WINDOW_UPDATE, ERROR = 0x20, 0x21, 0x22, 0x30, 0x3F
END_REQUEST = 1
verdicts = []


def verdict(name, met, figure):
    verdicts.append((name, "PASS" if met else "MISSED", figure))
    print(f"{'PASS  ' if met else 'MISSED'} {name}: {figure}", flush=True)


# ---- the protocol (docs/PROTOCOL.md) ----

def frame(kind, flags, stream, body=b""):
    return struct.pack(">IBBI", 6 + len(body), kind, flags, stream) + body


def pstr(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def request_head(stream, method, url, body):
    headers = [("Content-Type", "application/octet-stream")] if body else []
    out = pstr(method) + pstr(url) + struct.pack(">Q", len(body) if body else 0xFFFFFFFFFFFFFFFF)
    out += struct.pack(">H", len(headers)) + b"".join(pstr(n) + pstr(v) for n, v in headers) + struct.pack(">H", 0)
    if not body:
        return frame(REQUEST_HEAD, END_REQUEST, stream, out)
    return frame(REQUEST_HEAD, 0, stream, out) + frame(REQUEST_BODY, END_REQUEST, stream, body)


async def read_frame(reader):
    length = struct.unpack(">I", await reader.readexactly(4))[0]
    payload = await reader.readexactly(length)
    kind, flags, stream = struct.unpack(">BBI", payload[:6])
    return kind, flags, stream, payload[6:]


class Failed(Exception):
    """The client connection is unusable; the client leaves and another takes its place."""


async def exchange(reader, writer, window, stream, method, url, body, size):
    """One request; returns (None, "") when it succeeded with a body of `size` bytes, else an error name
    and the daemon's message."""
    writer.write(request_head(stream, method, url, body))
    status, got, unacked = None, 0, 0
    while True:
        kind, flags, s, b = await read_frame(reader)
        if kind == ERROR:
            code = struct.unpack(">H", b[:2])[0]
            if s == 0:
                raise Failed(f"CONNECTION_{CODES.get(code, code)}")
            if s == stream:
                detail = struct.unpack(">I", b[2:6])[0]
                return CODES.get(code, str(code)), f"{b[8:].decode(errors='replace')} (detail {detail})"
        elif s != stream:
            continue
        elif kind == RESPONSE_HEAD:
            status = struct.unpack(">H", b[:2])[0]
        elif kind == RESPONSE_BODY:
            got += len(b)
            unacked += len(b)
            if unacked >= window // 2:
                writer.write(frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", unacked)))
                unacked = 0
        elif kind == RESPONSE_END:
            if status != 200:
                return f"HTTP_{status}", ""
            return (None, "") if got == size else ("WRONG_BODY_LENGTH", f"{got} bytes, expected {size}")


# ---- the clients (SOAK_PROCESSES processes, asyncio in each) ----

class Shared:
    """State the driver and the client processes share."""

    def __init__(self):
        self.lock = multiprocessing.Lock()
        self.issued = multiprocessing.RawValue("q", 0)     # requests sent (or being sent)
        self.parked = multiprocessing.RawValue("q", 0)     # clients connected and waiting
        self.idle_on = multiprocessing.RawValue("b", 1)    # idle1s gets traffic now
        self.paused = multiprocessing.RawValue("b", 0)     # hold every client before its next request
        self.quit = multiprocessing.RawValue("b", 0)


def pick(rng, urls, idle_on):
    """A domain, method, URL, body and the expected body length."""
    domains = ["steady", "idle1s", "reset1"] if idle_on else ["steady", "reset1"]
    d = rng.choice(domains)
    if d == "reset1":
        if rng.random() < POST_PERCENT / 100:
            return d, "POST", urls[d] + "/post", POST_BODY, len(f"{len(POST_BODY)}\n")
        return d, "GET", urls[d] + "/get", b"", 3
    if rng.random() < 0.05:
        return d, "GET", urls[d] + "/64k", b"", LARGE
    return d, "GET", urls[d] + "/n.txt", b"", len(SMALL)


async def park(sh):
    """Waits, connected, while the driver holds the clients or the requests are all sent;
    False when the soak is over."""
    with sh.lock:
        sh.parked.value += 1
    while not sh.quit.value and (sh.paused.value or sh.issued.value >= REQUESTS):
        await asyncio.sleep(0.02)
    with sh.lock:
        sh.parked.value -= 1
    return not sh.quit.value


def take_one(sh):
    with sh.lock:
        if sh.quit.value or sh.paused.value or sh.issued.value >= REQUESTS:
            return False
        sh.issued.value += 1
        return True


def add(tally, key, n=1):
    tally[key] = tally.get(key, 0) + n


async def client(sh, sock, urls, rng, tally, samples):
    """Connects, sends 1-500 requests one at a time, leaves; again, until the soak is over."""
    while not sh.quit.value:
        try:
            reader, writer = await asyncio.open_unix_connection(sock)
        except OSError:
            add(tally, "session CONNECT_FAILED")
            await asyncio.sleep(1)
            continue
        add(tally, "sessions")
        domain = "session"      # what a failure is counted under: the domain of the request in flight
        try:
            writer.write(frame(HELLO, 0, 0, b"RECK" + struct.pack(">HHI", 1, 1, 0)))
            kind, _, _, b = await asyncio.wait_for(read_frame(reader), CLIENT_TIMEOUT)
            if kind != WELCOME:
                raise Failed("NO_WELCOME")
            window = struct.unpack(">I", b[18:22])[0]
            n = rng.randint(*SESSION)
            leave_mid = rng.random() < LEAVE_MID_REQUEST
            for i in range(n):
                domain = "session"
                while not take_one(sh):
                    if not await park(sh):
                        return
                domain, method, url, body, size = pick(rng, urls, sh.idle_on.value)
                stream = 2 * i + 1
                if leave_mid and i == n - 1:
                    writer.write(request_head(stream, method, url, body))
                    await writer.drain()
                    add(tally, "left mid-request")
                    break
                err, message = await asyncio.wait_for(
                    exchange(reader, writer, window, stream, method, url, body, size), CLIENT_TIMEOUT)
                add(tally, f"{domain} {err or 'ok'}")
                if err:
                    samples.setdefault(f"{domain} {err}", f"{method}: {message}")
                    if "did not send it again" in message:    # a resend refused (PROTOCOL.md 5.1)
                        add(tally, "refused resends")
        except (Failed, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as e:
            name = str(e) if isinstance(e, Failed) else ("CLIENT_TIMEOUT" if isinstance(e, asyncio.TimeoutError)
                                                         else "CONNECTION_LOST")
            add(tally, f"{domain} {name}")
        except asyncio.CancelledError:
            if domain != "session":
                add(tally, "unanswered when the load stopped")
            return
        finally:
            writer.close()


def client_process(sh, sock, urls, count, seed, results):
    async def main():
        rng = random.Random(seed)
        tally, samples = {"sessions": 0, "left mid-request": 0}, {}
        tasks = [asyncio.create_task(client(sh, sock, urls, random.Random(rng.random()), tally, samples))
                 for _ in range(count)]
        while not sh.quit.value and not all(t.done() for t in tasks):
            await asyncio.sleep(0.1)
        await asyncio.wait(tasks, timeout=5)    # then whoever still waits for an answer is cut off
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {"tally": tally, "samples": samples}
    results.put(asyncio.run(main()))


# ---- the upstreams and the daemon ----

class Setup:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="reckerd-soak-")
        os.chmod(self.dir, 0o755)
        d = self.dir
        www = os.path.join(d, "www")
        os.makedirs(www)
        with open(os.path.join(www, "n.txt"), "wb") as f:
            f.write(SMALL)
        with open(os.path.join(www, "64k"), "wb") as f:
            f.write(os.urandom(LARGE))
        for p in [www] + [os.path.join(www, x) for x in os.listdir(www)]:
            os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        run(f"""cd {d} && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=soak-ca &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout s.key -out s.csr -subj /CN=localhost &&
            openssl x509 -req -in s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out s.pem -days 2 -extfile san.ext &&
            chmod 644 s.key s.pem ca.pem""")
        self.ca = os.path.join(d, "ca.pem")
        self.steady, self.idle1s, self.reset1 = free_port(), free_port(), free_port()
        conf = f"""
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/t1; proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3; uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;
  keepalive_requests 1000000;
  ssl_protocols TLSv1.3;
  ssl_certificate {d}/s.pem;
  ssl_certificate_key {d}/s.key;
  server {{ listen 127.0.0.1:{self.steady} ssl http2; root {www}; keepalive_timeout 300s; }}
  server {{ listen 127.0.0.1:{self.idle1s} ssl; root {www}; keepalive_timeout 1s; }}
}}
"""
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(conf)
        spawn(["nginx", "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "error.log")])
        spawn(["/usr/bin/python3", os.path.join(ROOT, "bench", "soak_upstream.py"), str(self.reset1), str(RESET_PERCENT)])
        for port in (self.steady, self.idle1s, self.reset1):
            wait_port(port)
        self.urls = {"steady": f"https://127.0.0.1:{self.steady}", "idle1s": f"https://127.0.0.1:{self.idle1s}",
                     "reset1": f"http://127.0.0.1:{self.reset1}"}
        self.keys = {name: url.split("//")[1] for name, url in self.urls.items()}   # the stats' domain keys

    def daemon(self):
        self.sock = os.path.join(self.dir, "reckerd.sock")
        path = os.path.join(self.dir, "reckerd.json")
        with open(path, "w") as f:
            json.dump({"tls": {"caFile": self.ca}, "logLevel": "warning"}, f)
        self.log = os.path.join(self.dir, "reckerd.log")
        self.reckerd = spawn([RECKERD, "--config", path, "--socket", self.sock], stderr=open(self.log, "w"))
        wait_unix(self.sock)

    def stats(self):
        return json.loads(run([RECKER, "--socket", self.sock, "stats", "--json"]).stdout)

    def fault_counts(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.reset1}/__soak_stats", timeout=10) as r:
            return json.load(r)


def snapshot(s, name, issued, elapsed):
    pid = s.reckerd.pid
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    kinds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = re.sub(r"\[\d+\]$|:\[\d+\]$", "", target)
        kinds[kind] = kinds.get(kind, 0) + 1
    fds = sum(kinds.values())
    st = s.stats()
    states = {}
    for line in run(["ss", "-tanpH"]).stdout.splitlines():
        if f"pid={pid}," in line:
            states[line.split()[0]] = states.get(line.split()[0], 0) + 1
    snap = {"name": name, "issued": issued, "elapsed_s": elapsed, "rss_kib": rss, "fds": fds, "fd_kinds": kinds,
            "connections_open": st["connections_open"], "tcp_sockets": sum(states.values()), "tcp_states": states,
            "clients": st["clients"] - 1,    # not counting the stats query itself
            "per_domain_open": {n: st["domains"].get(k, {}).get("connections_open", 0) for n, k in s.keys.items()}}
    print(f"{name:>6}: {issued} requests, {elapsed:.0f} s, RSS {rss / 1024:.1f} MiB, {fds} fds, "
          f"connections_open {snap['connections_open']} {snap['per_domain_open']}, ss {states}, "
          f"clients {snap['clients']}", flush=True)
    return snap


# ---- the soak ----

def soak(s):
    sh = Shared()
    results = multiprocessing.Queue()
    per = [CLIENTS // PROCESSES + (1 if i < CLIENTS % PROCESSES else 0) for i in range(PROCESSES)]
    procs = [multiprocessing.Process(target=client_process, args=(sh, s.sock, s.urls, n, 1000 + i, results))
             for i, n in enumerate(per)]
    snaps, peak_rss, timeline = [], 0, []
    rng = random.Random(7)
    started = time.time()
    for p in procs:
        p.start()
    marks = [("start", WARMUP), ("middle", REQUESTS // 2), ("end", REQUESTS)]
    switch_at, stopped_early = started + 3, None
    while marks:
        now = time.time()
        issued = sh.issued.value
        if now - started > MAX_SECONDS:
            stopped_early = f"stopped at the {MAX_SECONDS:.0f} s limit after {issued} requests"
            break
        if s.reckerd.poll() is not None:
            stopped_early = f"reckerd exited with status {s.reckerd.returncode} after {issued} requests"
            break
        if any(p.exitcode not in (None, 0) for p in procs):
            stopped_early = f"a client process failed after {issued} requests"
            break
        name, mark = marks[0]
        rate = issued / max(now - started, 1)
        if issued >= mark - 3 * rate - CLIENTS:     # idle1s busy for the last 3 s before a snapshot
            sh.idle_on.value = 1
        elif now >= switch_at:
            sh.idle_on.value ^= 1
            switch_at = now + (3 if sh.idle_on.value else rng.uniform(0.5, 2.5))
        if issued >= mark:
            sh.paused.value = 1
            wait_until = time.time() + 2 * CLIENT_TIMEOUT
            while sh.parked.value < CLIENTS and time.time() < wait_until and s.reckerd.poll() is None:
                time.sleep(0.01)
            time.sleep(SETTLE)
            if sh.parked.value < CLIENTS:
                print(f"only {sh.parked.value} of {CLIENTS} clients parked for the {name} snapshot", flush=True)
            snaps.append(snapshot(s, name, sh.issued.value, time.time() - started))
            snaps[-1]["parked"] = sh.parked.value
            marks.pop(0)
            sh.paused.value = 0
            switch_at = time.time() + 3
        if len(timeline) == 0 or now - timeline[-1][0] >= 5:
            with open(f"/proc/{s.reckerd.pid}/status") as f:
                rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            peak_rss = max(peak_rss, rss)
            timeline.append((now, issued, rss))
            if len(timeline) % 6 == 0:
                print(f"  {issued} requests, {now - started:.0f} s, RSS {rss / 1024:.1f} MiB", flush=True)
        time.sleep(0.05)
    duration = time.time() - started
    sh.quit.value = 1
    tallies, wait_until = [], time.time() + 2 * CLIENT_TIMEOUT
    while len(tallies) < len(procs) and time.time() < wait_until:
        try:
            tallies.append(results.get(timeout=0.5))
        except Exception:
            if all(p.exitcode is not None for p in procs) and results.empty():
                break
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    tally, samples = {}, {}
    for t in tallies:
        for k, v in t["tally"].items():
            add(tally, k, v)
        for k, v in t["samples"].items():
            samples.setdefault(k, v)
    if s.reckerd.poll() is None:
        time.sleep(6)    # past keepAliveTimeout (4 s): the pools should be empty
        snaps.append(snapshot(s, "after", sh.issued.value, time.time() - started))
    return {"snaps": snaps, "tally": tally, "samples": samples, "duration": duration, "issued": sh.issued.value,
            "stopped_early": stopped_early, "peak_rss_kib": peak_rss, "processes_reported": len(tallies)}


def log_summary(path):
    """The daemon's warnings and errors, numbers folded, most frequent first."""
    kinds = {}
    with open(path, errors="replace") as f:
        for line in f:
            if "listening" in line and " info " in line:
                continue
            key = re.sub(r"\d+", "N", line.strip())[:160]
            kinds[key] = kinds.get(key, 0) + 1
    return sorted(kinds.items(), key=lambda kv: -kv[1])


def judge(s, r, stats, fault, log):
    snaps = {x["name"]: x for x in r["snaps"]}
    tally = r["tally"]
    verdict("daemon alive at the end", s.reckerd.poll() is None,
            "running" if s.reckerd.poll() is None else f"exited with status {s.reckerd.returncode}")
    done = sum(v for k, v in tally.items() if k.split()[0] in ("steady", "idle1s", "reset1"))
    verdict(f"{REQUESTS:,} requests sent", r["issued"] >= REQUESTS and not r["stopped_early"],
            f"{r['issued']:,} sent, {done:,} answered or failed, {tally.get('left mid-request', 0)} left unanswered "
            f"by their client, in {r['duration']:.0f} s"
            + (f"; {r['stopped_early']}" if r["stopped_early"] else ""))
    for key, label, unit in [("rss_kib", "RSS", "MiB"), ("fds", "descriptors", ""),
                             ("connections_open", "connection records", "")]:
        name = f"{label} flat within 5 % (middle to end)"
        if "middle" not in snaps or "end" not in snaps:
            verdict(name, False, "the load stopped before the " + ("middle" if "middle" not in snaps else "end")
                    + " snapshot")
            continue
        a, b = snaps["middle"][key], snaps["end"][key]
        change = (b - a) / a if a else (float("inf") if b else 0.0)
        show = (lambda v: f"{v / 1024:.1f}") if unit else str
        verdict(name, abs(change) <= FLAT, f"start {show(snaps['start'][key])}, middle {show(a)}, end {show(b)}"
                + (f" {unit}" if unit else "") + f" ({change * 100:+.1f} % middle to end)")
    mismatched = [f"{x['name']}: {x['connections_open']} records, {x['tcp_sockets']} sockets" for x in r["snaps"]
                  if x["connections_open"] != x["tcp_sockets"]]
    verdict("connection records = the daemon's TCP sockets (ss) at every snapshot", not mismatched,
            "; ".join(mismatched) or "equal at " + ", ".join(x["name"] for x in r["snaps"]))
    explained = sum(v for k, v in tally.items() if k.startswith("reset1 ") and k.split()[1] in RESET_CODES)
    unexplained = {k: v for k, v in tally.items()
                   if k not in ("sessions", "left mid-request", "refused resends") and not k.endswith(" ok")
                   and not (k.startswith("reset1 ") and k.split()[1] in RESET_CODES)}
    too_many = explained > fault["resets"]
    verdict("0 client errors other than the injected resets", not unexplained and not too_many,
            f"{explained} reset errors on reset1 (of {fault['resets']} resets injected); other errors: "
            + (", ".join(f"{k} {v}" for k, v in sorted(unexplained.items())) or "none"))
    if "after" in snaps:
        a = snaps["after"]
        verdict("idle after the soak: no connections, sockets or clients left", a["connections_open"] == 0
                and a["tcp_sockets"] == 0 and a["clients"] == 0,
                f"{a['connections_open']} connection records, {a['tcp_sockets']} TCP sockets, {a['clients']} clients, "
                f"{a['fds']} fds, RSS {a['rss_kib'] / 1024:.1f} MiB")


def write_report(s, r, stats, fault, log, command):
    snaps = r["snaps"]
    tally = r["tally"]
    cols = [x["name"] for x in snaps]
    lines = ["## Soak", "",
             f"Made by `{command}` on {time.strftime('%Y-%m-%d')}, in {r['duration'] / 60:.1f} minutes "
             f"({r['issued'] / r['duration']:.0f} requests/s).", "",
             f"{r['issued']:,} requests from {CLIENTS} concurrent clients (asyncio, {PROCESSES} processes, speaking "
             f"the protocol), each connecting, sending {SESSION[0]}–{SESSION[1]} requests one at a time and leaving "
             f"({LEAVE_MID_REQUEST * 100:.0f} % of them with their last request unanswered), a new client taking its "
             "place. Three domains on 127.0.0.1: **steady**, nginx over HTTPS with HTTP/2; **idle1s**, nginx over "
             "HTTPS/1.1 with `keepalive_timeout 1s`, given traffic in bursts (3 s on, 0.5–2.5 s off) so that its "
             f"connections go idle and are closed by nginx; **reset1**, `bench/soak_upstream.py`, which resets "
             f"{RESET_PERCENT:g} % of requests (RST once the request has arrived, no answer). 95 % of the nginx "
             f"requests fetch {len(SMALL)} bytes, 5 % fetch 64 KiB; "
             + (f"{POST_PERCENT:g} % of the reset1 requests are POSTs with a 100-byte body (never resent by reckerd, "
                "so a reset on one reaches its client), the rest GETs. " if POST_PERCENT else
                "every request is a GET (SOAK_POST_PERCENT=0). ")
             + "reckerd runs on its "
             "shipped defaults (10 connections per domain, keepAliveTimeout 4 s).", "",
             f"Snapshots are taken with every client connected and none with a request in flight, {SETTLE} s after "
             "the last answer: *start* after a warm-up of "
             f"{WARMUP:,} requests, *middle*, *end*; *after* is 6 s after the clients left (past keepAliveTimeout).", "",
             "| check | result | figure |", "|---|---|---|"]
    lines += [f"| {n} | **{v}** | {f} |" for n, v, f in verdicts]
    lines += ["", "| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    lines.append("| requests sent | " + " | ".join(str(x["issued"]) for x in snaps) + " |")
    lines.append("| seconds | " + " | ".join(f"{x['elapsed_s']:.0f}" for x in snaps) + " |")
    lines.append("| RSS (MiB) | " + " | ".join(f"{x['rss_kib'] / 1024:.1f}" for x in snaps) + " |")
    lines.append("| descriptors | " + " | ".join(str(x["fds"]) for x in snaps) + " |")
    lines.append("| of which sockets / other | " + " | ".join(
        f"{x['fd_kinds'].get('socket', 0)} / {x['fds'] - x['fd_kinds'].get('socket', 0)}" for x in snaps) + " |")
    lines.append("| connections_open (steady / idle1s / reset1) | " + " | ".join(
        f"{x['connections_open']} ({' / '.join(str(x['per_domain_open'][n]) for n in ('steady', 'idle1s', 'reset1'))})"
        for x in snaps) + " |")
    lines.append("| TCP sockets (ss) | " + " | ".join(
        f"{x['tcp_sockets']}" + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(x["tcp_states"].items())) + ")"
                                 if x["tcp_states"] else "") for x in snaps) + " |")
    lines.append("| clients | " + " | ".join(str(x["clients"]) for x in snaps) + " |")
    lines += ["", f"Peak RSS sampled every 5 s during the run: {r['peak_rss_kib'] / 1024:.1f} MiB.", "",
              "Per domain, from the daemon's stats at the end:", "",
              "| domain | requests | errors | retries | connections created | p50 / p99 µs | client answers ok | client errors |",
              "|---|---|---|---|---|---|---|---|"]
    for name, key in s.keys.items():
        d = stats["domains"].get(key, {})
        errs = ", ".join(f"{k.split(' ', 1)[1]} {v}" for k, v in sorted(tally.items())
                         if k.startswith(name + " ") and not k.endswith(" ok")) or "0"
        lines.append(f"| {name} | {d.get('requests_total', '?')} | {d.get('errors_total', '?')} | {d.get('retries', '?')} | "
                     f"{d.get('connections_created', '?')} | {d.get('latency_us', {}).get('p50', '?')} / "
                     f"{d.get('latency_us', {}).get('p99', '?')} | {tally.get(name + ' ok', 0)} | {errs} |")
    sessions = {k: v for k, v in tally.items() if k.startswith("session ")}
    retries = stats["domains"].get(s.keys["reset1"], {}).get("retries", 0)
    reset_errors = sum(v for k, v in tally.items() if k.startswith("reset1 ") and k.split()[1] in RESET_CODES)
    refused = tally.get("refused resends", 0)    # counted in retries and among the clients' reset errors alike
    failed = ", ".join(f"{k[8:]} {v}" for k, v in sessions.items())
    lines += ["", f"Client connections: {tally.get('sessions', 0)}, of which {tally.get('left mid-request', 0)} left "
              "with a request in flight (the daemon counts those among its errors, as CANCELLED)"
              + (f"; failed outside a request: {failed}" if failed else "") + ".", "",
              f"reset1, by its own count: {fault['requests']} requests, {fault['resets']} reset, {fault['connections']} "
              "connections. reckerd resends on a fresh connection what was reset on a reused one when the method allows "
              "it (docs/PROTOCOL.md §5.1), and each other reset reaches a client. A resend refused (a POST reset on a "
              "reused connection) counts in the daemon's retries and reaches its client as a reset error, so it is "
              f"taken off once: resets injected {fault['resets']} "
              f"{'=' if fault['resets'] == retries - refused + reset_errors else '≠'} retries {retries} "
              f"− refused resends {refused} + reset errors seen by clients {reset_errors}.", ""]
    if r["samples"]:
        lines += ["What the daemon said, one example of each client error:", ""]
        lines += [f"- {k}: `{v}`" for k, v in sorted(r["samples"].items())] + [""]
    lines += ["Daemon log (level warning), numbers folded:", ""]
    lines += [f"- {n} × `{k}`" for k, n in log[:8]] or ["- nothing"]
    if len(log) > 8:
        lines.append(f"- … {len(log) - 8} more kinds")
    lines += ["", "```sh", f"{command}", "```", ""]
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    with open(path) as f:
        text = f.read()
    if "\n## Soak\n" in text:
        text = text[:text.index("\n## Soak\n")]
    with open(path, "w") as f:
        f.write(text.rstrip("\n") + "\n\n" + "\n".join(lines))


def main():
    env = " ".join(f"{k}={os.environ[k]}" for k in ("RECKER_BIN_DIR", "SOAK_REQUESTS", "SOAK_PROCESSES", "SOAK_MAX_SECONDS",
                                                          "SOAK_POST_PERCENT")
                   if k in os.environ)
    command = (env + " " if env else "") + "/usr/bin/python3 bench/soak.py"
    s = Setup()
    try:
        s.daemon()
        r = soak(s)
        alive = s.reckerd.poll() is None
        stats = s.stats() if alive else {"domains": {}}
        fault = s.fault_counts()
        log = log_summary(s.log)
        judge(s, r, stats, fault, log)
        write_report(s, r, stats, fault, log, command)
        print(json.dumps({"snapshots": r["snaps"], "tally": r["tally"], "samples": r["samples"], "fault": fault,
                          "log": log[:8]}, indent=1))
        return 0   # as bench.py: a missed check is reported, not a failed build
    finally:
        stop_children(15)
        shutil.rmtree(s.dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
