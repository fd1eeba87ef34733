import Foundation
import ReckerTestSupport

/// A loopback upstream (python3's http.server) that shows the CLI tests what reached it:
/// - any method on any other path answers 200 with "METHOD TARGET", the request headers one
///   per line, a blank line, then the request body byte for byte;
/// - `/flaky/N/NAME` answers 503 (`Retry-After: 0`) to its first N requests, then "ok";
/// - `/count/NAME` answers how many requests `/flaky/*/NAME` has had;
/// - `/broken` announces 100 bytes, sends 10 and closes (a response that breaks);
/// - `/reason` answers 200 with the reason phrase "Fine By Me".
final class CLIEchoUpstream {
    private let server: PythonServer
    var port: UInt16 { server.port }

    private static let script = #"""
    import http.server, socket, sys, threading
    counts = {}
    lock = threading.Lock()
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        def log_message(self, *a):
            pass
        def answer(self, status, body, extra=()):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        def any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                for _ in range(100000):
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
            parts = self.path.split("/")
            if self.path.startswith("/flaky/"):
                with lock:
                    counts[parts[3]] = counts.get(parts[3], 0) + 1
                    seen = counts[parts[3]]
                if seen <= int(parts[2]):
                    self.answer(503, b"busy", [("Retry-After", "0")])
                else:
                    self.answer(200, b"ok")
            elif self.path.startswith("/count/"):
                with lock:
                    self.answer(200, str(counts.get(parts[2], 0)).encode())
            elif self.path == "/reason":
                self.send_response(200, "Fine By Me")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            elif self.path == "/broken":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"0123456789")
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            else:
                head = "%s %s\n" % (self.command, self.path)
                head += "".join("%s: %s\n" % (k, v) for k, v in self.headers.items())
                self.answer(200, head.encode() + b"\n" + body)
    for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]:
        setattr(H, "do_" + m, H.any)
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    print(s.server_address[1], flush=True)
    s.serve_forever()
    """#

    init() throws {
        server = try PythonServer(CLIEchoUpstream.script, name: "echo server")
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }
}
