#!/usr/bin/python3
"""Runs the XCTest suite in parallel workers, one test class per job.

The unit targets (no processes, no sockets) run as one job; every integration class runs
in its own xctest process, so classes never share a daemon, an nginx or a temporary
folder, and a class's own fixtures (set up once per class) are kept. The longest classes
start first, from the times the last recorded run wrote to scripts/test-durations.tsv
(`--record` rewrites it); a class not listed there starts after them.

Each job's output goes to .build/test-logs/CLASS.log; a failing class's log is printed
in full. The exit status is non-zero if any test failed, any job crashed or ran over
`--timeout`, or no test ran at all.

    scripts/run-tests.py [--workers N] [--timeout S] [--record] [FILTER ...]

A FILTER (a class name, `Module.Class`, or a prefix of either) runs only the matching jobs.
"""
import argparse
import os
import re
import shutil
import subprocess
import tempfile
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DURATIONS = ROOT / "scripts" / "test-durations.tsv"
UNIT_MODULES = ("ReckerCLITests", "ReckerLoopTests", "ReckerPoolTests", "ReckerProtocolTests", "ReckerSessionTests")
EXECUTED = re.compile(r"Executed (\d+) tests?, with (\d+) failures? \((\d+) unexpected\)")
HUNG = re.compile(r"^error: reckerd \(pid \d+\) (did not exit|spun)", re.M)
SKIPPED = re.compile(r"Test Case '([^']+)' skipped")
FAILURE = re.compile(r"error: .*|Test Case '[^']+' failed")


def bin_dir():
    configured = os.environ.get("RECKER_BIN_DIR")
    if configured:
        return Path(configured)
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def list_tests(bundle):
    out = subprocess.run([str(bundle), "--list-tests"], capture_output=True, text=True, timeout=120)
    names = []
    for line in out.stdout.splitlines():
        # "Listing N tests in ...:" then one "Module.Class/test" per line.
        line = line.strip()
        if "/" in line and "." in line.split("/")[0] and " " not in line:
            names.append(line)
    if not names:
        sys.exit(f"run-tests: {bundle} --list-tests listed no tests:\n{out.stdout}{out.stderr}")
    return names


def jobs_for(names):
    unit, classes = [], {}
    for name in names:
        cls = name.split("/")[0]
        if cls.split(".")[0] in UNIT_MODULES:
            if cls not in unit:
                unit.append(cls)
        else:
            classes.setdefault(cls, 0)
            classes[cls] += 1
    jobs = [("unit", ",".join(unit))] if unit else []
    jobs += [(cls.split(".", 1)[1], cls) for cls in sorted(classes)]
    return jobs


def load_durations():
    durations = {}
    if DURATIONS.exists():
        for line in DURATIONS.read_text().splitlines():
            if line and not line.startswith("#"):
                name, seconds = line.split("\t")
                durations[name] = float(seconds)
    return durations


class Runner:
    def __init__(self, bundle, jobs, workers, timeout):
        self.bundle = bundle
        self.queue = list(jobs)
        self.workers = workers
        self.timeout = timeout
        self.lock = threading.Lock()
        self.results = {}
        self.logs = ROOT / ".build" / "test-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()

    def take(self):
        with self.lock:
            return self.queue.pop(0) if self.queue else None

    def run_job(self, name, spec):
        log = self.logs / f"{name}.log"
        begun = time.monotonic()
        with open(log, "w") as out:
            try:
                proc = subprocess.run([str(self.bundle), spec], stdout=out, stderr=subprocess.STDOUT,
                                      timeout=self.timeout, cwd=ROOT)
                status = proc.returncode
            except subprocess.TimeoutExpired:
                status = "timeout"
        seconds = time.monotonic() - begun
        text = log.read_text(errors="replace")
        executed = [m for m in EXECUTED.finditer(text)]
        # The last "Executed" line is the whole selection's.
        tests, failures = (int(executed[-1].group(1)), int(executed[-1].group(2))) if executed else (0, 0)
        skipped = SKIPPED.findall(text)
        # A daemon that would not stop, or whose libcurl stormed, is a failure even when every
        # assertion held.
        ok = status == 0 and failures == 0 and tests > 0 and not HUNG.search(text)
        with self.lock:
            self.results[name] = dict(ok=ok, tests=tests, failures=failures, seconds=seconds,
                                      status=status, skipped=skipped, log=log, text=text)
            elapsed = time.monotonic() - self.started
            word = "ok  " if ok else "FAIL"
            extra = f", {len(skipped)} skipped" if skipped else ""
            print(f"[{elapsed:6.1f} s] {word} {name}: {tests} tests{extra}, {seconds:.1f} s"
                  + ("" if ok else f" (exit {status}, {failures} failures)"), flush=True)
            if not ok:
                print(f"---- {log} ----\n{text}\n---- end of {name} ----", flush=True)

    def worker(self):
        while True:
            job = self.take()
            if job is None:
                return
            self.run_job(*job)

    def run(self):
        threads = [threading.Thread(target=self.worker) for _ in range(self.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=int(os.environ.get("RECKER_TEST_WORKERS", "4")))
    parser.add_argument("--timeout", type=float, default=300, help="seconds one class may take")
    parser.add_argument("--record", action="store_true", help="rewrite scripts/test-durations.tsv")
    parser.add_argument("filters", nargs="*")
    args = parser.parse_args()

    bundle = bin_dir() / "reckerdPackageTests.xctest"
    if not bundle.exists():
        sys.exit(f"run-tests: {bundle} is missing; build it with `swift build --build-tests`")
    os.environ.setdefault("RECKER_BIN_DIR", str(bundle.parent))
    # Every temporary folder of the run (daemons' sockets, nginx's fixture files, Foundation's
    # own) goes under one of the run's, removed at its end: runs left tens of gigabytes in
    # /tmp before. Short, as Unix socket paths live there (108 bytes at most).
    run_tmp = tempfile.mkdtemp(prefix="rt-", dir="/tmp")
    os.chmod(run_tmp, 0o755)
    os.environ["TMPDIR"] = run_tmp
    jobs = jobs_for(list_tests(bundle))
    if args.filters:
        jobs = [j for j in jobs if any(j[0].startswith(f) or j[1].startswith(f) for f in args.filters)]
        if not jobs:
            sys.exit(f"run-tests: no test class matches {args.filters}")
    durations = load_durations()
    jobs.sort(key=lambda j: -durations.get(j[0], 5.0))

    runner = Runner(bundle, jobs, max(1, args.workers), args.timeout)
    print(f"run-tests: {len(jobs)} jobs on {runner.workers} workers", flush=True)
    try:
        runner.run()
    finally:
        shutil.rmtree(run_tmp, ignore_errors=True)
    wall = time.monotonic() - runner.started

    results = runner.results
    tests = sum(r["tests"] for r in results.values())
    failures = sum(r["failures"] for r in results.values())
    failed = sorted(n for n, r in results.items() if not r["ok"])
    skipped = [(n, s) for n, r in results.items() for s in r["skipped"]]
    for name, case in skipped:
        # XCTSkip's line: "FILE:LINE: CLASS.test : Test skipped - REASON".
        said = [l for l in results[name]["text"].splitlines() if "Test skipped" in l and case.split(".")[-1] in l]
        reason = said[0].split("Test skipped", 1)[1].lstrip(" -:") if said else "(no reason printed)"
        print(f"skipped: {case} — {reason}")
    slowest = sorted(results.items(), key=lambda kv: -kv[1]["seconds"])[:5]
    print("slowest: " + ", ".join(f"{n} {r['seconds']:.0f} s" for n, r in slowest))
    print(f"run-tests: {tests} tests, {failures} failures, {len(skipped)} skipped, "
          f"{len(failed)} classes failed{(': ' + ', '.join(failed)) if failed else ''}; {wall:.0f} s wall on {runner.workers} workers")

    if args.record and not failed and not args.filters:
        lines = ["# seconds each test job took in the last recorded run (scripts/run-tests.py --record);",
                 "# the runner starts the longest first"]
        lines += [f"{n}\t{r['seconds']:.1f}" for n, r in sorted(results.items(), key=lambda kv: -kv[1]["seconds"])]
        DURATIONS.write_text("\n".join(lines) + "\n")
    return 1 if failed or tests == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
