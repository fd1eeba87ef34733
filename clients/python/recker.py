#!/usr/bin/env python3
"""A client for reckerd in Python 3, standard library only.

reckerd keeps warm HTTP connection pools; this module speaks its protocol
(docs/PROTOCOL.md) over the daemon's Unix socket, so a script's requests go out on
pooled, already-open connections.

    import recker
    with recker.Client() as c:                      # finds the daemon as `recker` does
        r = c.send("https://example.com/")
        print(r.status, r.reused, len(r.body))
        with c.stream("https://example.com/big") as s:
            for chunk in s:                          # the daemon sends only what you take
                handle(chunk)
        for item in c.batch(["https://example.com/a", "https://example.com/b"]):
            print(item)                              # a Response, or the ReckerError it got
        print(c.stats()["requests_total"])

As a script: ``python3 recker.py [--socket PATH] [-X METHOD] [-H 'Name: value']...
[-d DATA] URL`` writes the body to stdout; ``python3 recker.py stats`` prints the stats.

Many requests may be in flight on one Client (``batch``, or streams read side by side),
but a Client is not thread-safe: use one per thread.
"""

import json
import os
import socket
import stat
import struct
import sys
import time

__all__ = ["Client", "Response", "ResponseStream", "ReckerError", "default_socket_path", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = 1
#: reckerd's release this client ships with.
RELEASE = "0.1.0"
#: Sent when a request names no User-Agent.
USER_AGENT = "recker-python/" + RELEASE
_MAGIC = b"RECK"
_UNKNOWN_LENGTH = 0xFFFFFFFFFFFFFFFF
_DEFAULT_MAX_FRAME = 1 << 20
_HANDSHAKE_TIMEOUT = 3.0

# Frame types (PROTOCOL.md section 2).
_HELLO, _WELCOME = 0x01, 0x02
_REQUEST_HEAD, _REQUEST_BODY = 0x10, 0x11
_RESPONSE_HEAD, _RESPONSE_BODY, _RESPONSE_END = 0x20, 0x21, 0x22
_WINDOW_UPDATE, _CANCEL, _ERROR = 0x30, 0x31, 0x3F
_STATS_REQUEST, _STATS_RESPONSE = 0x50, 0x51
_FEATURE_LIMITS = 0x1

# Request options (PROTOCOL.md section 2.3): name -> (tag, struct format).
_OPTIONS = {
    "connect_timeout_ms": (0x0001, ">I"),
    "total_timeout_ms": (0x0002, ">I"),
    "follow_redirects": (0x0003, ">B"),
    "compressed": (0x0004, ">B"),
    "keep_method": (0x0005, ">B"),
}

# Error codes (PROTOCOL.md section 5); 900 and up are this side's own.
ERROR_NAMES = {
    1: "MALFORMED_FRAME", 2: "FRAME_TOO_LARGE", 3: "BAD_HANDSHAKE", 4: "UNSUPPORTED_VERSION",
    5: "UNKNOWN_FRAME_TYPE", 6: "INVALID_STREAM", 7: "FLOW_CONTROL_ERROR", 8: "TOO_MANY_IN_FLIGHT",
    100: "INVALID_METHOD", 101: "INVALID_URL", 102: "INVALID_HEADER_NAME", 103: "INVALID_HEADER_VALUE",
    104: "FORBIDDEN_HEADER", 105: "UNKNOWN_CRITICAL_OPTION", 106: "BODY_LENGTH_MISMATCH",
    107: "HEADERS_TOO_LARGE", 200: "DNS_FAILED", 201: "CONNECT_FAILED", 202: "CONNECT_TIMEOUT",
    203: "TLS_FAILED", 204: "TIMEOUT", 205: "UPSTREAM_SEND_FAILED", 206: "UPSTREAM_RECV_FAILED",
    207: "UPSTREAM_PROTOCOL", 208: "TOO_MANY_REDIRECTS", 209: "UPSTREAM_FAILED", 300: "CANCELLED",
    301: "SHUTTING_DOWN", 302: "QUEUE_FULL", 303: "QUEUE_TIMEOUT", 304: "ACCESS_DENIED",
    305: "LOCAL_RESOURCES", 306: "DESTINATION_DENIED", 307: "TOO_MANY_CLIENTS", 399: "INTERNAL",
    900: "DAEMON_UNAVAILABLE", 901: "CONNECTION_LOST",
}
_CODES = {name: code for code, name in ERROR_NAMES.items()}
_STATS_FORMATS = {"json": 0, "prometheus": 1, "table": 2}


class ReckerError(Exception):
    """An error with a stable code, as the daemon sends it (or this client makes it).

    ``name`` is the code's name (``"DNS_FAILED"``), ``code`` its number, ``detail`` the raw
    cause (a CURLcode, an errno) or 0. ``may_have_reached_upstream``: the request may have
    had an effect upstream; ``retry_safe``: sending it again cannot repeat one.
    """

    def __init__(self, code, message, detail=0, may_have_reached_upstream=False, retry_safe=True):
        self.code = code if isinstance(code, int) else _CODES[code]
        self.name = ERROR_NAMES.get(self.code, "ERROR_%d" % self.code)
        self.message = message
        self.detail = detail
        self.may_have_reached_upstream = may_have_reached_upstream
        self.retry_safe = retry_safe
        super().__init__("%s (%d): %s" % (self.name, self.code, message))


class Response:
    """A response: status, headers, facts about the upstream connection, and the body."""

    def __init__(self, status, http_version, connection_id, reused, timings, headers):
        self.status = status
        self.http_version = {10: "1.0", 20: "2", 30: "3"}.get(http_version, "1.1")
        self.connection_id = connection_id
        self.reused = reused
        # Microseconds: queue, connect, tls, first_byte; total once the response ended.
        self.timings = timings
        self.headers = headers
        self.body = b""

    def header(self, name):
        """The first value of a header, compared without case, or None."""
        lower = name.lower()
        return next((v for n, v in self.headers if n.lower() == lower), None)

    def __repr__(self):
        return "<Response %d, %d bytes, connection %d%s>" % (
            self.status, len(self.body), self.connection_id, " reused" if self.reused else "")


def default_socket_path():
    """The daemon's socket, found as the Swift library and `recker` find it: RECKER_SOCKET if
    set, else the first of the usual places that holds a socket, else the first place."""
    env = os.environ.get("RECKER_SOCKET")
    if env:
        return env
    candidates = ["/run/reckerd/reckerd.sock"]
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        candidates.append(xdg + "/reckerd.sock")
    candidates.append("/tmp/reckerd-%d/reckerd.sock" % os.getuid())
    for path in candidates:
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return path
        except OSError:
            pass
    return candidates[0]


def _untrusted_directory(path):
    """Why the socket's directory could hold another user's stand-in for the daemon, or None."""
    directory = os.path.dirname(path) or "."
    try:
        st = os.lstat(directory)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return "%s is not a directory" % directory
    me = os.getuid()
    if st.st_uid not in (0, me):
        return "%s belongs to uid %d, neither root nor this user (uid %d)" % (directory, st.st_uid, me)
    if st.st_mode & 0o022:
        return "%s can be written by other users (mode %o)" % (directory, st.st_mode & 0o7777)
    return None


class _Writer:
    def __init__(self):
        self.parts = []

    def u8(self, v):
        self.parts.append(struct.pack(">B", v))

    def u16(self, v):
        self.parts.append(struct.pack(">H", v))

    def u32(self, v):
        self.parts.append(struct.pack(">I", v))

    def u64(self, v):
        self.parts.append(struct.pack(">Q", v))

    def str(self, s, what):
        data = s.encode("utf-8")
        if len(data) > 0xFFFF:
            raise ReckerError("MALFORMED_FRAME", "%s of %d bytes exceeds 65535" % (what, len(data)))
        self.u16(len(data))
        self.parts.append(data)

    def bytes(self):
        return b"".join(self.parts)


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ReckerError("MALFORMED_FRAME", "frame body ends inside a field")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def str(self):
        raw = self.take(self.u16())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ReckerError("MALFORMED_FRAME", "a string field is not UTF-8") from None


class _Stream:
    """One request's state on this side of the connection."""

    def __init__(self, kind, window, method=None):
        self.kind = kind              # "buffered", "streaming" or "stats"
        self.method = method          # the request's method (None for stats)
        self.sent = False             # REQUEST_HEAD (or STATS_REQUEST) written to the daemon
        self.send_window = window
        self.response = None
        self.chunks = []
        self.body = []
        self.done = False
        self.error = None
        self.cancelled = False        # CANCEL sent: wait for the daemon's answer, drop the rest
        self.daemon_flags = None      # (may_have_reached, retry_safe) from the daemon's answer to a CANCEL


class Client:
    """One connection to reckerd, opened on first use and again after it breaks.

    ``socket_path``: the daemon's socket (default: found as `recker` finds it).
    ``base_url``: a prefix for relative URLs such as ``/users/1``.
    """

    def __init__(self, socket_path=None, base_url=None, handshake_timeout=_HANDSHAKE_TIMEOUT):
        self.socket_path = socket_path or default_socket_path()
        self.base_url = base_url
        self.handshake_timeout = handshake_timeout
        self._sock = None
        self._buffer = bytearray()
        self._streams = {}
        self._next_id = 1
        self._max_frame = _DEFAULT_MAX_FRAME
        self._max_in_flight = 0
        self._initial_window = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Closes the connection; requests in flight fail with CONNECTION_LOST."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._lost(ReckerError("CONNECTION_LOST", "the client closed the connection"))

    # -- requests ---------------------------------------------------------------------

    def send(self, url, method="GET", headers=(), body=None, timeout=None, **options):
        """Sends a request and returns the whole Response.

        ``headers``: (name, value) pairs or a dict. ``body``: bytes or str. ``timeout``:
        seconds for the whole call; past it the request is cancelled at the daemon and
        TIMEOUT raised. ``options``: connect_timeout_ms, total_timeout_ms,
        follow_redirects, compressed, keep_method (PROTOCOL.md section 2.3).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        sid = self._start(url, method, headers, body, options, "buffered", deadline)
        st = self._streams[sid]
        self._pump_until(sid, lambda: st.done, deadline)
        self._forget(sid, st)
        st.response.body = b"".join(st.body)
        return st.response

    def stream(self, url, method="GET", headers=(), body=None, timeout=None, **options):
        """Sends a request and returns a ResponseStream once the response head arrives.

        Iterate it for the body's chunks; the daemon sends only as much as has been read.
        Closing it (or leaving its ``with`` block) before the end cancels the request, which
        frees its upstream connection. ``timeout`` bounds the wait for the head.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        sid = self._start(url, method, headers, body, options, "streaming", deadline)
        st = self._streams[sid]
        self._pump_until(sid, lambda: st.response is not None or st.done, deadline)
        return ResponseStream(self, sid, st)

    def batch(self, requests, concurrency=10, timeout=None):
        """Sends every request with at most ``concurrency`` in flight on this connection.

        A request is a URL or a dict of ``send``'s arguments. Returns, in input order, each
        request's Response or the ReckerError it failed with. ``timeout`` bounds the batch.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        items = [r if isinstance(r, dict) else {"url": r} for r in requests]
        results = [None] * len(items)
        running = {}
        next_item = 0
        limit = max(1, concurrency)
        while next_item < len(items) or running:
            while next_item < len(items) and len(running) < limit:
                args = dict(items[next_item])
                try:
                    sid = self._start(args.pop("url"), args.pop("method", "GET"), args.pop("headers", ()),
                                      args.pop("body", None), args, "buffered", deadline)
                    running[sid] = (next_item, self._streams[sid])
                except ReckerError as e:
                    results[next_item] = e
                next_item += 1
            if not running:
                continue
            try:
                self._pump_until(None, lambda: any(st.done for _, st in running.values()), deadline)
            except ReckerError as e:
                for sid, (i, _) in running.items():
                    results[i] = e
                    self._cancel_quietly(sid)
                running.clear()
                continue
            for sid in [s for s, (_, st) in running.items() if st.done]:
                i, st = running.pop(sid)
                self._forget(sid, st)
                if st.error is not None:
                    results[i] = st.error
                else:
                    st.response.body = b"".join(st.body)
                    results[i] = st.response
        return results

    def stats(self, format="json", timeout=None):
        """The daemon's statistics: a dict for "json", text for "prometheus" or "table"."""
        if format not in _STATS_FORMATS:
            raise ValueError("format is one of %s" % ", ".join(_STATS_FORMATS))
        deadline = None if timeout is None else time.monotonic() + timeout
        self._connect(deadline)
        sid = self._register("stats")
        st = self._streams[sid]
        body = b"" if format == "json" else bytes([_STATS_FORMATS[format]])
        self._write(_frame(_STATS_REQUEST, 0, sid, body))
        self._pump_until(sid, lambda: st.done, deadline)
        self._forget(sid, st)
        text = b"".join(st.body).decode("utf-8")
        return json.loads(text) if format == "json" else text

    def cancel(self, stream_id):
        """Cancels a request in flight: the daemon stops it and frees its connection."""
        st = self._streams.get(stream_id)
        if st is None or st.done or st.cancelled:
            return
        st.cancelled = True
        st.error = ReckerError("CANCELLED", "cancelled by the client", may_have_reached_upstream=True, retry_safe=False)
        if st.kind != "stats":
            self._write(_frame(_CANCEL, 0, stream_id, b""))

    # -- internals ----------------------------------------------------------------------

    def _url(self, url):
        if self.base_url is None or "://" in url:
            return url
        base = self.base_url[:-1] if self.base_url.endswith("/") else self.base_url
        return base + url if url.startswith("/") else base + "/" + url

    def _start(self, url, method, headers, body, options, kind, deadline):
        if isinstance(body, str):
            body = body.encode("utf-8")
        if isinstance(headers, dict):
            headers = list(headers.items())
        headers = list(headers)
        # Many APIs refuse a request without a User-Agent; the caller's own (even empty) wins.
        if not any(name.lower() == "user-agent" for name, _ in headers):
            headers.append(("User-Agent", USER_AGENT))
        head = _Writer()
        head.str(method, "the method")
        head.str(self._url(url), "the URL")
        head.u64(len(body) if body is not None else 0)
        head.u16(len(headers))
        for name, value in headers:
            head.str(name, "a header name")
            head.str(value, "a header value")
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError("unknown option %s" % ", ".join(sorted(unknown)))
        given = [(name, v) for name, v in options.items() if v is not None]
        head.u16(len(given))
        for name, v in given:
            tag, fmt = _OPTIONS[name]
            head.u16(tag)
            head.u16(struct.calcsize(fmt))
            head.parts.append(struct.pack(fmt, int(v)))
        head_bytes = head.bytes()
        self._connect(deadline)
        sid = self._register(kind, method)
        has_body = bool(body)
        st = self._streams[sid]
        self._write(_frame(_REQUEST_HEAD, 0 if has_body else 1, sid, head_bytes))
        st.sent = True
        offset = 0
        chunk_max = max(1, self._max_frame - 6)
        while has_body and offset < len(body):
            if st.send_window <= 0:
                self._pump_until(sid, lambda: st.send_window > 0 or st.done, deadline)
                if st.done:
                    break
            n = min(st.send_window, chunk_max, len(body) - offset)
            end = offset + n
            self._write(_frame(_REQUEST_BODY, 1 if end == len(body) else 0, sid, body[offset:end]))
            st.send_window -= n
            offset = end
        return sid

    def _register(self, kind, method=None):
        if self._max_in_flight and sum(1 for s in self._streams.values() if s.kind != "stats") >= self._max_in_flight:
            raise ReckerError("TOO_MANY_IN_FLIGHT", "more than %d requests in flight" % self._max_in_flight)
        sid = self._next_id
        while sid == 0 or sid in self._streams:
            sid = (sid + 1) & 0xFFFFFFFF
        self._next_id = (sid + 1) & 0xFFFFFFFF
        self._streams[sid] = _Stream(kind, self._initial_window, method)
        return sid

    def _connect(self, deadline):
        if self._sock is not None:
            return
        path = self.socket_path
        why = _untrusted_directory(path)
        if why:
            raise ReckerError("DAEMON_UNAVAILABLE", "refusing the socket %s: %s; another user could stand in for reckerd there" % (path, why))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._remaining(deadline, self.handshake_timeout))
            # A Unix socket whose accept backlog is full refuses at once (EAGAIN) rather
            # than waiting: try again until the handshake's time is up, as recker does.
            connect_by = time.monotonic() + (self._remaining(deadline, self.handshake_timeout) or 0)
            for attempt in range(100000):
                try:
                    sock.connect(path)
                    break
                except BlockingIOError:
                    if time.monotonic() >= connect_by:
                        raise socket.timeout() from None
                    time.sleep(min(0.05, 0.001 * (attempt + 1)))
            sock.sendall(_frame(_HELLO, 0, 0, _MAGIC + struct.pack(">HHI", PROTOCOL_VERSION, PROTOCOL_VERSION, _FEATURE_LIMITS)))
            self._sock = sock
            self._buffer = bytearray()
            ftype, _, _, body = self._read_frame(self._remaining(deadline, self.handshake_timeout), handshake=True)
        except socket.timeout:
            self._sock = None
            sock.close()
            raise ReckerError("DAEMON_UNAVAILABLE", "reckerd at %s did not answer in time" % path) from None
        except OSError as e:
            self._sock = None
            sock.close()
            if isinstance(e, PermissionError):
                raise ReckerError("DAEMON_UNAVAILABLE", "permission denied on %s: join the group that may use reckerd, then log in again" % path, detail=e.errno) from None
            raise ReckerError("DAEMON_UNAVAILABLE", "no reckerd listening on %s: %s" % (path, e.strerror), detail=e.errno or 0) from None
        except ReckerError:
            self._sock = None
            sock.close()
            raise
        if ftype == _ERROR:
            self._sock = None
            sock.close()
            raise _decode_error(body, 0)
        r = _Reader(body)
        if ftype != _WELCOME or r.take(4) != _MAGIC:
            self._sock = None
            sock.close()
            raise ReckerError("BAD_HANDSHAKE", "reckerd did not answer HELLO with WELCOME")
        version, _features, self._max_frame, self._max_in_flight, self._initial_window = struct.unpack(">HIIII", r.take(18))
        if version != PROTOCOL_VERSION:
            self._sock = None
            sock.close()
            raise ReckerError("UNSUPPORTED_VERSION", "reckerd chose protocol version %d, not offered" % version)
        sock.settimeout(None)

    @staticmethod
    def _remaining(deadline, cap=None):
        if deadline is None:
            return cap
        left = deadline - time.monotonic()
        if left <= 0:
            raise ReckerError("TIMEOUT", "no answer within the call's timeout", may_have_reached_upstream=True, retry_safe=False)
        return left if cap is None else min(left, cap)

    def _write(self, data):
        if self._sock is None:
            raise ReckerError("CONNECTION_LOST", "the connection to reckerd is closed")
        try:
            self._sock.sendall(data)
        except OSError as e:
            error = ReckerError("CONNECTION_LOST", "write to reckerd: %s" % e.strerror, detail=e.errno or 0)
            self._drop(error)
            raise error from None

    def _read_frame(self, timeout, handshake=False):
        while True:
            if len(self._buffer) >= 4:
                (length,) = struct.unpack(">I", self._buffer[:4])
                limit = _DEFAULT_MAX_FRAME if handshake else self._max_frame
                if length < 6:
                    raise ReckerError("MALFORMED_FRAME", "frame length %d is below the minimum of 6" % length)
                if length > limit:
                    raise ReckerError("FRAME_TOO_LARGE", "frame length %d exceeds the maximum of %d" % (length, limit))
                if len(self._buffer) >= 4 + length:
                    ftype, flags, sid = struct.unpack(">BBI", self._buffer[4:10])
                    body = bytes(self._buffer[10:4 + length])
                    del self._buffer[:4 + length]
                    return ftype, flags, sid, body
            self._sock.settimeout(timeout)
            data = self._sock.recv(65536)
            if not data:
                raise ReckerError("CONNECTION_LOST", "reckerd closed the connection")
            self._buffer += data

    def _pump_until(self, sid, condition, deadline):
        """Reads and dispatches frames until `condition()` holds. On the call's deadline the
        stream `sid` is cancelled and TIMEOUT raised."""
        while not condition():
            try:
                timeout = self._remaining(deadline)
            except ReckerError as late:
                if sid is not None:
                    self._cancel_quietly(sid)
                    self._settle(sid, late)
                raise
            try:
                frame = self._read_frame(timeout)
            except socket.timeout:
                continue
            except OSError as e:
                self._drop(ReckerError("CONNECTION_LOST", "read from reckerd: %s" % e.strerror, detail=e.errno or 0))
                frame = None
            except ReckerError as e:
                self._drop(e)
                frame = None
            if frame is not None:
                try:
                    self._dispatch(*frame)
                except ReckerError as e:
                    self._drop(e)
        st = None if sid is None else self._streams.get(sid) or getattr(self, "_lost_streams", {}).get(sid)
        if st is not None and st.error is not None:
            if st.done:
                self._forget(sid, st)
            raise st.error

    def _settle(self, sid, error):
        """After a CANCEL on the call's timeout: waits (at most 1 s) for the daemon's answer,
        whose flags say whether the request left the queue (PROTOCOL.md section 5), and
        gives `error` those flags."""
        st = self._streams.get(sid)
        settle_by = time.monotonic() + 1.0
        while st is not None and not st.done and self._sock is not None and time.monotonic() < settle_by:
            try:
                frame = self._read_frame(max(0.01, settle_by - time.monotonic()))
            except (socket.timeout, OSError, ReckerError):
                break
            self._dispatch(*frame)
        if st is not None and st.daemon_flags is not None:
            error.may_have_reached_upstream, error.retry_safe = st.daemon_flags

    def _forget(self, sid, st):
        """Drops a finished stream, unless its id already belongs to a newer one."""
        if self._streams.get(sid) is st:
            del self._streams[sid]

    def _cancel_quietly(self, sid):
        try:
            self.cancel(sid)
        except ReckerError:
            pass

    def _dispatch(self, ftype, flags, sid, body):
        if sid == 0:
            if ftype == _ERROR:
                self._drop(_decode_error(body, flags))
            return
        st = self._streams.get(sid)
        if st is None:
            return
        if st.cancelled:
            if ftype == _ERROR:
                # The daemon's word on where the request had got to.
                answer = _decode_error(body, flags)
                st.daemon_flags = (answer.may_have_reached_upstream, answer.retry_safe)
                st.error.may_have_reached_upstream, st.error.retry_safe = st.daemon_flags
            elif ftype == _RESPONSE_END:
                st.daemon_flags = (True, st.error.retry_safe)
            if ftype in (_RESPONSE_END, _ERROR) or (ftype == _STATS_RESPONSE and not flags & 1):
                st.done = True
                del self._streams[sid]
            return
        if ftype == _RESPONSE_HEAD:
            r = _Reader(body)
            status, version, conn_id = r.u16(), r.u8(), r.u64()
            timings = {"queue_us": r.u32(), "connect_us": r.u32(), "tls_us": r.u32(), "first_byte_us": r.u32()}
            headers = [(r.str(), r.str()) for _ in range(r.u16())]
            st.response = Response(status, version, conn_id, bool(flags & 1), timings, headers)
        elif ftype == _RESPONSE_BODY:
            if st.kind == "streaming":
                st.chunks.append(body)
            else:
                st.body.append(body)
                if body:
                    self._write(_frame(_WINDOW_UPDATE, 0, sid, struct.pack(">I", len(body))))
        elif ftype == _RESPONSE_END:
            total_us = _Reader(body).u32()
            if st.response is not None:
                st.response.timings["total_us"] = total_us
            st.done = True
        elif ftype == _ERROR:
            st.error = _decode_error(body, flags)
            st.done = True
        elif ftype == _WINDOW_UPDATE:
            st.send_window += _Reader(body).u32()
        elif ftype == _STATS_RESPONSE:
            st.body.append(body)
            if not flags & 1:
                st.done = True

    def _drop(self, error):
        """The connection is gone: every stream on it fails with `error`."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._lost(error)

    def _lost(self, error):
        for st in self._streams.values():
            if not st.done:
                st.error = st.error or _as_lost(error, st)
                st.done = True
        self._lost_streams = self._streams
        self._streams = {}


_SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def _as_lost(error, st):
    """`error` as a request in flight on a lost connection gets it (PROTOCOL.md section 5):
    one whose first frame was written may have reached the upstream."""
    if error.name != "CONNECTION_LOST" or not st.sent:
        return error
    return ReckerError("CONNECTION_LOST", error.message, detail=error.detail, may_have_reached_upstream=True,
                       retry_safe=st.method is None or st.method in _SAFE_METHODS)


class ResponseStream:
    """A response whose body is read as it arrives: iterate it for the chunks.

    ``status``, ``headers``, ``response`` (the Response without its body). Closing it before
    the end cancels the request at the daemon.
    """

    def __init__(self, client, sid, st):
        self._client = client
        self._sid = sid
        self._st = st
        if st.response is None:
            client._forget(sid, st)
            raise st.error
        self.response = st.response
        self.status = st.response.status
        self.headers = st.response.headers

    @property
    def stream_id(self):
        """The request's stream id on the connection (for Client.cancel)."""
        return self._sid

    def __iter__(self):
        return self

    def __next__(self):
        st = self._st
        if st.error is not None and st.cancelled:
            raise st.error
        if not st.chunks and not st.done:
            self._client._pump_until(self._sid, lambda: st.chunks or st.done, None)
        if st.chunks:
            chunk = st.chunks.pop(0)
            if not st.done and chunk and self._client._sock is not None:
                self._client._write(_frame(_WINDOW_UPDATE, 0, self._sid, struct.pack(">I", len(chunk))))
            return chunk
        self._client._forget(self._sid, st)
        if st.error is not None:
            raise st.error
        raise StopIteration

    def read(self):
        """The rest of the body as bytes."""
        return b"".join(self)

    def close(self):
        """Cancels the request unless it has ended; its connection upstream is freed."""
        if not self._st.done:
            self._client._cancel_quietly(self._sid)
        else:
            self._client._forget(self._sid, self._st)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _frame(ftype, flags, sid, body):
    return struct.pack(">IBBI", 6 + len(body), ftype, flags, sid) + body


def _decode_error(body, flags):
    r = _Reader(body)
    code, detail = r.u16(), r.u32()
    return ReckerError(code, r.str(), detail=detail, may_have_reached_upstream=bool(flags & 1), retry_safe=bool(flags & 2))


def main(argv):
    """`recker.py [--socket PATH] [-X METHOD] [-H 'Name: value']... [-d DATA] URL`, or
    `recker.py [--socket PATH] stats [--json | --prometheus]`."""
    import argparse
    p = argparse.ArgumentParser(prog="recker.py", description="Send a request through reckerd; the body goes to stdout.")
    p.add_argument("--socket", help="the daemon's socket (default: found as recker finds it)")
    p.add_argument("-X", "--request", dest="method", default=None, help="the method (default GET, or POST with -d)")
    p.add_argument("-H", "--header", action="append", default=[], help="a header, 'Name: value' (repeatable)")
    p.add_argument("-d", "--data", help="a request body; @FILE reads it from FILE")
    p.add_argument("--json", action="store_true", help="with stats: the JSON document")
    p.add_argument("--prometheus", action="store_true", help="with stats: Prometheus text")
    p.add_argument("url", help="an absolute http(s) URL, or `stats`")
    a = p.parse_args(argv)
    headers = []
    for h in a.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            p.error("a header is 'Name: value', not %r" % h)
        headers.append((name.strip(), value.strip()))
    body = None
    if a.data is not None:
        if a.data.startswith("@"):
            with open(a.data[1:], "rb") as f:
                body = f.read()
        else:
            body = a.data.encode("utf-8")
    try:
        with Client(socket_path=a.socket) as c:
            if a.url == "stats":
                fmt = "prometheus" if a.prometheus else "json" if a.json else "table"
                out = c.stats(fmt)
                sys.stdout.write(json.dumps(out, indent=2) + "\n" if fmt == "json" else out)
                return 0
            method = a.method or ("POST" if body is not None else "GET")
            with c.stream(a.url, method=method, headers=headers, body=body) as s:
                for chunk in s:
                    sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    except ReckerError as e:
        sys.stderr.write("recker.py: %s\n" % e)
        return 1
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
