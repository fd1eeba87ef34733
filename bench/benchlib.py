"""Helpers the benchmark scripts share (bench.py, soak.py, domain_rounds.py,
client_churn.py): processes they start and stop, ports and sockets they wait for, a daemon's
RSS. Everything stays on 127.0.0.1."""
import json
import os
import socket
import subprocess
import tempfile
import time

# Every process spawn() starts, for the scripts to stop at the end.
children = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, capture_output=True, text=True, **kw)


def spawn(args, **kw):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=kw.pop("stderr", subprocess.DEVNULL), **kw)
    children.append(p)
    return p


def stop_children(seconds=15):
    """Asks every spawned process to stop, then kills those that did not within `seconds`."""
    for c in children:
        c.terminate()
    for c in children:
        try:
            c.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            c.kill()


def wait_port(port, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def wait_unix(path, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {path}")


def start_daemon(bin_dir, config, prefix):
    """reckerd from `bin_dir` with `config` (a dict) in a new temporary folder, on its own
    socket, waited for: (process, socket path)."""
    work = tempfile.mkdtemp(prefix=prefix)
    path = os.path.join(work, "config.json")
    with open(path, "w") as f:
        json.dump(config, f)
    sock = os.path.join(work, "r.sock")
    daemon = spawn([os.path.join(bin_dir, "reckerd"), "--config", path, "--socket", sock])
    wait_unix(sock)
    return daemon, sock


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
