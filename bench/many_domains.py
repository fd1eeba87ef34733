#!/usr/bin/python3
"""One request to each of N distinct domains (dN.localhost, which libcurl resolves to
loopback itself: no lookup leaves the machine), in blocks: the daemon's CPU per request and
RSS after each block, and its open descriptors. A domain's state must cost the same whether
it is the 100th or the 20,000th.

usage: bench/many_domains.py BIN_DIR [DOMAINS] [BLOCK]   (BIN_DIR holds reckerd)
"""
import http.server, json, os, socketserver, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import recker  # noqa: E402

bin_dir = sys.argv[1]
domains = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
block = int(sys.argv[3]) if len(sys.argv) > 3 else 5000


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024


upstream = Server(("127.0.0.1", 0), Handler)
threading.Thread(target=upstream.serve_forever, daemon=True).start()
port = upstream.server_address[1]
work = tempfile.mkdtemp(prefix="reckerd-domains-")
config = os.path.join(work, "config.json")
with open(config, "w") as f:
    json.dump({"limits": {"maxDomains": domains + 1000}}, f)
sock = os.path.join(work, "r.sock")
daemon = subprocess.Popen([os.path.join(bin_dir, "reckerd"), "--config", config, "--socket", sock],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)

    def ticks():
        f = open("/proc/%d/stat" % daemon.pid).read().split(")")[1].split()
        return int(f[11]) + int(f[12])

    def rss():
        for line in open("/proc/%d/status" % daemon.pid):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
        return 0

    hz = os.sysconf("SC_CLK_TCK")
    with recker.Client(sock) as c:
        for start in range(0, domains, block):
            t0, c0 = time.time(), ticks()
            for i in range(start, min(domains, start + block)):
                c.send("http://d%d.localhost:%d/" % (i, port))
            n = min(domains, start + block) - start
            print("domains %6d-%6d: %5.0f µs CPU per request, %4.1f s, RSS %4d MiB, %d descriptors" % (
                start, start + n, (ticks() - c0) * 1e6 / hz / n, time.time() - t0, rss(),
                len(os.listdir("/proc/%d/fd" % daemon.pid))), flush=True)
finally:
    daemon.terminate()
    daemon.wait(timeout=30)
    upstream.shutdown()
