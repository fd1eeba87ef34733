#!/usr/bin/python3
"""Rounds of requests to new domains that the daemon forgets between rounds: its RSS must
settle, not grow with every round (per-domain state that outlives its domain would add to
every round). With `limits.maxDomains` 100 and `forgetIdleDomainsAfter` 4 s: 5,000
domains, then ROUNDS rounds of 2,500 new ones (127.0.x.y on loopback, a port nobody
listens on: each request is one refused connect), waiting after each until the daemon has
forgotten them all. The budget: the least growth of a round after the first two is under
1 MiB (a leak shows in every round; the allocator's settling in one round or another).

usage: bench/domain_rounds.py BIN_DIR [ROUNDS]   (BIN_DIR holds reckerd)
"""
import os, socket, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recker  # noqa: E402
from benchlib import rss_kib, start_daemon, stop_children  # noqa: E402

bin_dir = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5

probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]  # kept bound, never listening: every connect is refused
daemon, sock = start_daemon(bin_dir, {"limits": {"maxDomains": 100, "forgetIdleDomainsAfter": 4000, "dnsCacheTimeout": 1}},
                            "reckerd-rounds-")

try:
    with recker.Client(sock) as c:
        def batch(start, n):
            for i in range(start, start + n):
                try:
                    c.send("http://127.0.%d.%d:%d/" % (i // 250, i % 250 + 1, port))
                except recker.ReckerError:
                    pass

        def forgotten():
            deadline = time.time() + 15
            while time.time() < deadline:
                if not c.stats().get("domains"):
                    return True
                time.sleep(0.2)
            return False

        batch(0, 5000)
        forgotten()
        sizes = []
        for r in range(rounds):
            batch(5000 + r * 2500, 2500)
            if not forgotten():
                sys.exit("domain_rounds: the daemon did not forget idle domains within 15 s")
            sizes.append(rss_kib(daemon.pid))
            print("round %d: RSS %d KiB" % (r + 1, sizes[-1]), flush=True)
    growth = [b - a for a, b in zip(sizes[1:], sizes[2:])]
    least = min(growth) if growth else 0
    verdict = "MET" if least < 1024 else "MISSED"
    print("domain rounds: RSS growth per round after the second %s KiB; least %d KiB (budget < 1024 KiB): %s"
          % (growth, least, verdict))
    sys.exit(0 if verdict == "MET" else 1)
finally:
    stop_children(30)
