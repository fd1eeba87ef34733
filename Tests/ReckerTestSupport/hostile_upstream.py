#!/usr/bin/python3
"""An upstream that answers with malformed response heads, for the tests: obs-folded header
lines (RFC 9112 §5.2) in every position, in trailers, in 1xx heads, with bare LF; over
HTTP/2, a header value carrying a fold, split across HEADERS and CONTINUATION frames.

usage: hostile_upstream.py h1 LOG
       hostile_upstream.py h2 LOG CERT KEY
Prints the port it listens on (127.0.0.1, chosen by the kernel) as its first line. Every
request read is logged as "CONNECTION METHOD PATH" to LOG (connections numbered from 1 in
the order accepted). GET /CASE answers with CASES[CASE] (h1) or H2_CASES[CASE] (h2); any
other path with 200 "ok"."""
import signal, socket, ssl, sys, threading

signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})


def head(*lines, body=b"hello", crlf=b"\r\n"):
    return crlf.join(l.encode() for l in lines) + crlf + crlf + body


# Each is a whole response; a client must answer it sensibly or refuse it, never crash.
CASES = {
    "ok": head("HTTP/1.1 200 OK", "Content-Length: 2", body=b"ok"),
    "fold-first": head("HTTP/1.1 200 OK", " X-A: 1", "Content-Length: 5"),
    "fold-first-tab": head("HTTP/1.1 200 OK", "\tX-A: 1", "Content-Length: 5"),
    "fold-middle": head("HTTP/1.1 200 OK", "X-A: 1", " folded", "Content-Length: 5"),
    "fold-last": head("HTTP/1.1 200 OK", "Content-Length: 5", "X-A: 1", "\tfolded"),
    "fold-many": head("HTTP/1.1 200 OK", "X-A: 1", " two", "\tthree", "  four", "Content-Length: 5", "X-B: b", " c"),
    "fold-only-space": head("HTTP/1.1 200 OK", "X-A: 1", " ", "Content-Length: 5"),
    "fold-content-length": head("HTTP/1.1 200 OK", "Content-Length: 5", " 7"),
    "fold-long": head("HTTP/1.1 200 OK", "X-A: 1", " " + "x" * 60000, "Content-Length: 5"),
    "fold-many-lines": head("HTTP/1.1 200 OK", "X-A: 1", *([" y"] * 2000), "Content-Length: 5"),
    "fold-status": head("HTTP/1.1 200 OK", " ", "Content-Length: 5"),
    "fold-bare-lf": head("HTTP/1.1 200 OK", " X-A: 1", "X-B: 2", " folded", "Content-Length: 5", crlf=b"\n"),
    "fold-1xx": head("HTTP/1.1 103 Early Hints", " Link: </a>", body=b"")
    + head("HTTP/1.1 200 OK", "X-A: 1", " folded", "Content-Length: 5"),
    "fold-trailer": head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Trailer: X-T", body=b"")
    + b"5\r\nhello\r\n0\r\nX-T: 1\r\n folded\r\n\r\n",
    "fold-trailer-first": head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", body=b"")
    + b"5\r\nhello\r\n0\r\n X-T: 1\r\n\r\n",
    "fold-redirect": head("HTTP/1.1 302 Found", " X-A: 1", "Location: /ok", "Content-Length: 0", body=b""),
    "fold-close": head("HTTP/1.1 200 OK", " X-A: 1", "Connection: close", "Content-Length: 5"),
    "fold-te": head("HTTP/1.1 200 OK", "Transfer-Encoding:", " chunked", body=b"5\r\nhello\r\n0\r\n\r\n"),
    "fold-cl": head("HTTP/1.1 200 OK", "Content-Length:", " 5"),
    "fold-location": head("HTTP/1.1 302 Found", "Location: /o", " k", "Content-Length: 0", body=b""),
    "bare-cr-value": head("HTTP/1.1 200 OK", "X-A: a\rContent-Length: 10", "Content-Length: 5"),
    "ctl-value": head("HTTP/1.1 200 OK", "X-A: a\x1b[31mred\x7f", "Content-Length: 5"),
    "close-after-status": b"HTTP/1.1 200 OK\r\n",
    "close-mid-header": b"HTTP/1.1 200 OK\r\nContent-Len",
    "cl-hex": head("HTTP/1.1 200 OK", "Content-Length: 0x5"),
    "cl-plus": head("HTTP/1.1 200 OK", "Content-Length: +5"),
    "cl-huge": head("HTTP/1.1 200 OK", "Content-Length: 99999999999999999999999"),
    "cl-conflict": head("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 3"),
    "cl-list-conflict": head("HTTP/1.1 200 OK", "Content-Length: 5, 56"),
    "cl-list-equal": head("HTTP/1.1 200 OK", "Content-Length: 5, 5"),
    "cl-and-te": head("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n"),
    "status-long": head("HTTP/1.1 65736 Big", "Content-Length: 5"),
    "status-four-digits": head("HTTP/1.1 2000 OK", "Content-Length: 5"),
    "status-letter": head("HTTP/1.1 200x OK", "Content-Length: 5"),
    "close-101": head("HTTP/1.1 101 Switching Protocols", "Upgrade: other", "Connection: upgrade", body=b"\x00other protocol"),
    "no-colon": head("HTTP/1.1 200 OK", "X-A 1", "Content-Length: 5"),
    "space-before-colon": head("HTTP/1.1 200 OK", "X-A : 1", "Content-Length: 5"),
    "empty-name": head("HTTP/1.1 200 OK", ": 1", "Content-Length: 5"),
    "nul-in-value": head("HTTP/1.1 200 OK", "X-A: 1\x002", "Content-Length: 5"),
}

# HTTP/2: (headers, body). A fold has no place in HTTP/2 (RFC 9113 §8.2.1: CR, LF and
# leading whitespace are malformed); the filler pushes the bad field into a CONTINUATION.
FILLER = [("x-filler-%d" % i, "f" * 1000) for i in range(24)]
H2_CASES = {
    "ok": ([(":status", "200")], b"ok"),
    "fold-value": ([(":status", "200"), ("x-a", "1\r\n folded")], b"hello"),
    "fold-continuation": ([(":status", "200")] + FILLER + [("x-a", "1\r\n X-B: 2")], b"hello"),
    "leading-space-value": ([(":status", "200")] + FILLER + [("x-a", " 1")], b"hello"),
    "space-in-name": ([(":status", "200")] + FILLER + [(" x-a", "1")], b"hello"),
    "fold-trailer": ([(":status", "200")], b"hello", [("x-t", "1\r\n folded")]),
}

mode, logpath = sys.argv[1], sys.argv[2]
log = open(logpath, "a", buffering=1)
lock = threading.Lock()
accepted = [0]


def note(conn, method, path):
    with lock:
        log.write("%d %s %s\n" % (conn, method, path))


def serve_h1(sock, conn):
    buf = b""
    try:
        for _ in range(10000):
            while b"\r\n\r\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            raw, buf = buf.split(b"\r\n\r\n", 1)
            lines = raw.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            while len(buf) < length:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            buf = buf[length:]
            note(conn, method, path)
            answer = CASES.get(path.lstrip("/"), CASES["ok"])
            if method == "HEAD":
                answer = answer.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            sock.sendall(answer)
            if path == "/fold-close" or path.startswith("/close-"):
                return
    except (OSError, ValueError):
        return
    finally:
        sock.close()


def serve_h2(raw, conn, tls):
    import h2.config, h2.connection, h2.events, h2.exceptions
    try:
        sock = tls.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        return
    config = h2.config.H2Configuration(client_side=False, validate_outbound_headers=False,
                                       normalize_outbound_headers=False, validate_inbound_headers=False)
    h = h2.connection.H2Connection(config=config)
    h.initiate_connection()
    sock.sendall(h.data_to_send())
    heads = {}
    try:
        for _ in range(100000):
            data = sock.recv(65536)
            if not data:
                return
            for event in h.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    heads[event.stream_id] = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h2.events.DataReceived):
                    h.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    sid = event.stream_id
                    path = heads[sid][":path"]
                    note(conn, heads[sid][":method"], path)
                    case = H2_CASES.get(path.lstrip("/"), H2_CASES["ok"])
                    headers, body = case[0], case[1]
                    h.send_headers(sid, headers + [("content-length", str(len(body)))])
                    if len(case) > 2:
                        h.send_data(sid, body)
                        h.send_headers(sid, case[2], end_stream=True)
                    else:
                        h.send_data(sid, body, end_stream=True)
            sock.sendall(h.data_to_send())
    except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
        return
    finally:
        sock.close()


tls = None
if mode == "h2":
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[3], sys.argv[4])
    tls.set_alpn_protocols(["h2"])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(64)
print(server.getsockname()[1], flush=True)
for _ in range(100000):
    s, _ = server.accept()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    accepted[0] += 1
    target = serve_h2 if mode == "h2" else serve_h1
    args = (s, accepted[0], tls) if mode == "h2" else (s, accepted[0])
    threading.Thread(target=target, args=args, daemon=True).start()
