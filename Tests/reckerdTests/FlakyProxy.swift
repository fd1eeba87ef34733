import Foundation
import ReckerTestSupport

/// A TCP relay on 127.0.0.1 (python3) in front of an upstream port that misbehaves with the
/// first connections it accepts: it resets the first `reset` of them at once, and holds the
/// next `hang` open without a byte (a TLS handshake that never completes); the rest are
/// relayed to `target`. `accepted` is how many connections it has taken so far.
final class FlakyProxy {
    private let server: PythonServer
    private let countFile: String
    var port: UInt16 { server.port }

    private static let script = #"""
    import socket, struct, sys, threading
    target, reset, hang, count_file = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(512)
    print(s.getsockname()[1], flush=True)
    accepted = 0
    held = []
    def pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    while True:
        c, _ = s.accept()
        accepted += 1
        with open(count_file, "w") as f:
            f.write(str(accepted))
        if accepted <= reset:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        elif accepted <= reset + hang:
            held.append(c)
        else:
            u = socket.create_connection(("127.0.0.1", target))
            threading.Thread(target=pump, args=(c, u), daemon=True).start()
            threading.Thread(target=pump, args=(u, c), daemon=True).start()
    """#

    init(target: UInt16, reset: Int = 0, hang: Int = 0) throws {
        countFile = try TestEnvironment.makeTempDir("flaky").appendingPathComponent("accepted").path
        server = try PythonServer(FlakyProxy.script, arguments: [String(target), String(reset), String(hang), countFile], name: "relay")
    }

    var accepted: Int { Int((try? String(contentsOfFile: countFile, encoding: .utf8)) ?? "0") ?? 0 }
}
