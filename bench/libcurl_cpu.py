#!/usr/bin/python3
"""CPU per request of reckerd (libcurl 8.14 linked in) beside libcurl's own floor on both
libraries a Debian 12 host may have: one `curl --parallel --parallel-max N` process of
Debian 12's curl 7.88.1 and of Debian 13's curl 8.14.1 (from bookworm-backports, unpacked
by scripts/fetch-libcurl.sh bench, never installed). Plain HTTP/1.1 and HTTP/2 over TLS,
64 and 256 clients, nginx on 127.0.0.1, CPU from /proc (the process under test's own user
+ sys), median of BENCH_RUNS interleaved rounds. `--append FILE` replaces this section of
FILE (docs/BENCHMARKS.md)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import LOAD, ROOT, RUNS, Setup, cpu_seconds, summary  # noqa: E402
from benchlib import run, stop_children  # noqa: E402

SECTION = "## libcurl 7.88 and 8.14: CPU per request"
CURL814 = os.path.join(ROOT, ".build-curl", "bench", "curl")
CURL814_LIB = os.path.join(ROOT, ".build-curl", "bench", "lib")


def curl_floor(curl, env, urls, parallel, ca):
    """One curl process fetching `urls` `parallel` at a time: requests/s and its own CPU per request (µs)."""
    fd, path = tempfile.mkstemp(prefix="reckerd-bench-urls-")
    with os.fdopen(fd, "w") as f:
        for u in urls:
            f.write(f'url = "{u}"\noutput = "/dev/null"\n')
    args = [curl, "-s", "--cacert", ca, "-K", path, "--parallel", "--parallel-immediate", "--parallel-max", str(parallel)]
    start = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    os.unlink(path)
    if status != 0:
        raise RuntimeError(f"{curl} failed ({status})")
    return len(urls) / wall, (usage.ru_utime + usage.ru_stime) / len(urls) * 1e6


def reckerd_cpu(pid, sock, target, clients):
    before = cpu_seconds(pid)
    r = json.loads(run([LOAD, "--socket", sock, "--url", target, "--connections", str(clients), "--seconds", "4"]).stdout)
    used = cpu_seconds(pid) - before
    return r["rps"], used / max(1, r["requests"]) * 1e6, r["errors"]


def main():
    subprocess.run([os.path.join(ROOT, "scripts", "fetch-libcurl.sh"), "bench"], check=True)
    env814 = dict(os.environ, LD_LIBRARY_PATH=CURL814_LIB)
    version = lambda curl, env: run([curl, "--version"], env=env).stdout.split("\n")[0]  # noqa: E731
    curls = {"curl 7.88": ("curl", dict(os.environ)), "curl 8.14": (CURL814, env814)}
    names = {k: version(*v) for k, v in curls.items()}
    s = Setup()
    rows = {}
    try:
        p, sock = s.daemon("libcurl")
        targets = {"HTTP/1.1": f"http://127.0.0.1:{s.plain}/n.txt", "HTTP/2 TLS": f"https://localhost:{s.h2}/n.txt"}
        for target in targets.values():
            run([LOAD, "--socket", sock, "--url", target, "--connections", "64", "--seconds", "1"])
        for _ in range(RUNS):
            for proto, target in targets.items():
                for clients in (64, 256):
                    # 8.14 first in each round, then 7.88, then reckerd: interleaved.
                    for name in ("curl 8.14", "curl 7.88"):
                        curl, env = curls[name]
                        rows.setdefault((proto, clients, name), []).append(curl_floor(curl, env, [target] * 20000, clients, s.ca))
                    rps, us, errors = reckerd_cpu(p.pid, sock, target, clients)
                    rows.setdefault((proto, clients, "reckerd"), []).append((rps, us))
                    if errors:
                        print(f"reckerd: {errors} errors ({proto}, {clients} clients)", flush=True)
        lines = [SECTION, "",
                 f"`bench/libcurl_cpu.py` (in `make bench`), {time.strftime('%Y-%m-%d')}: CPU per request (µs of the "
                 "process under test, user + sys from /proc) and requests/s, median of "
                 f"{RUNS} interleaved rounds; nginx (2 workers) serving a 23-byte file on 127.0.0.1. reckerd "
                 "runs on the libcurl 8.14.1 linked into it, under `recker-load` over its Unix socket. "
                 "libcurl's floor is one `curl --parallel --parallel-immediate --parallel-max N` process "
                 "fetching 20,000 URLs, on each library: "
                 f"`{names['curl 7.88']}` and `{names['curl 8.14']}`.", "",
                 "| protocol | clients | reckerd µs | curl 8.14 µs | reckerd / 8.14 floor | curl 7.88 µs | reckerd req/s | curl 8.14 req/s | curl 7.88 req/s |",
                 "|---|---|---|---|---|---|---|---|---|"]
        verdicts = []
        for proto in targets:
            for clients in (64, 256):
                med = {n: (summary([x[0] for x in rows[(proto, clients, n)]])["median"],
                           summary([x[1] for x in rows[(proto, clients, n)]])["median"]) for n in ("reckerd", "curl 8.14", "curl 7.88")}
                ratio = med["reckerd"][1] / med["curl 8.14"][1]
                lines.append(f"| {proto} | {clients} | {med['reckerd'][1]:.1f} | {med['curl 8.14'][1]:.1f} | {ratio:.2f}x | "
                             f"{med['curl 7.88'][1]:.1f} | {med['reckerd'][0]:.0f} | {med['curl 8.14'][0]:.0f} | {med['curl 7.88'][0]:.0f} |")
                verdicts.append((f"{proto} at {clients} clients: CPU per request <= 1.25x libcurl 8.14's floor", ratio <= 1.25,
                                 f"{med['reckerd'][1]:.1f} us vs {med['curl 8.14'][1]:.1f} us ({ratio:.2f}x)"))
        lines += ["", "| target | verdict | figure |", "|---|---|---|"]
        lines += [f"| {n} | {'MET' if ok else '**MISSED**'} | {fig} |" for n, ok, fig in verdicts]
        text = "\n".join(lines) + "\n"
        print(text, flush=True)
        if len(sys.argv) > 2 and sys.argv[1] == "--append":
            path = sys.argv[2]
            old = open(path).read() if os.path.exists(path) else ""
            if SECTION in old:
                head, rest = old.split(SECTION, 1)
                tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
                old = head.rstrip("\n") + "\n" + tail
            with open(path, "w") as f:
                f.write(old.rstrip("\n") + "\n\n" + text)
        p.terminate()
    finally:
        stop_children(10)
        shutil.rmtree(s.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
