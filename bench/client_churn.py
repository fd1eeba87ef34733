#!/usr/bin/python3
"""What client churn and idleness cost the daemon, as the system sees it: RSS after 30,000
binary clients (each connects, says HELLO, reads WELCOME and leaves, 4 at a time), and the
CPU an idle daemon uses in 10 s. The suite checks the same from inside, without timing
(ResourceTests: the heap the allocator counts, and the loop's wake-ups); the budgets on what
the system sees live here: RSS growth under 1 MiB, idle CPU under 1 %.

usage: bench/client_churn.py BIN_DIR   (BIN_DIR holds reckerd)
"""
import os, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recker  # noqa: E402
from benchlib import rss_kib, start_daemon, stop_children  # noqa: E402

daemon, sock = start_daemon(sys.argv[1], {}, "reckerd-churn-")


def cpu_s():
    fields = open("/proc/%d/stat" % daemon.pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def churn(count, threads=4):
    failures = []

    def one_thread():
        for _ in range(count // threads):
            c = recker.Client(sock)
            try:
                c._connect(time.monotonic() + 5)
            except Exception as e:  # noqa: BLE001 - counted, reported below
                failures.append(e)
            finally:
                c.close()
    ts = [threading.Thread(target=one_thread) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return len(failures)


try:
    failed = churn(4000)
    time.sleep(0.5)
    before = rss_kib(daemon.pid)
    started = time.monotonic()
    failed += churn(30000)
    took = time.monotonic() - started
    time.sleep(0.5)
    after = rss_kib(daemon.pid)
    time.sleep(1)
    cpu_before = cpu_s()
    time.sleep(10)
    idle = cpu_s() - cpu_before
    rss_ok = after - before < 1024 and failed == 0
    idle_ok = idle < 0.1
    print("client churn: 30,000 clients in %.1f s (%d failed): RSS %d -> %d KiB, growth %d KiB (budget < 1024 KiB): %s"
          % (took, failed, before, after, after - before, "MET" if rss_ok else "MISSED"))
    print("idle: %.2f s of CPU in 10 s (budget < 0.1 s): %s" % (idle, "MET" if idle_ok else "MISSED"))
    sys.exit(0 if rss_ok and idle_ok else 1)
finally:
    stop_children(30)
