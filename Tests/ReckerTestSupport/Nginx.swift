import Foundation

/// A real nginx on loopback for the tests: plain HTTP/1.1 on one port, HTTPS with HTTP/2 on
/// another, certificates from a CA made at start, and a log line per request that names
/// nginx's own connection serial number (`$connection`), so reuse is seen from the upstream.
public final class Nginx: @unchecked Sendable {
    public let dir: URL
    public let httpPort: UInt16
    public let httpsPort: UInt16
    public let caFile: String
    private let process: Process

    /// Static files served at `/`, written before start: name → bytes.
    public init(files: [String: Data] = [:], extraConfig: String = "") throws {
        dir = try TestEnvironment.makeTempDir("nginx")
        httpPort = TestEnvironment.freePort()
        httpsPort = TestEnvironment.freePort()
        let www = dir.appendingPathComponent("www")
        try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        for (name, data) in files {
            let url = www.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            try data.write(to: url)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
        }
        caFile = dir.appendingPathComponent("ca.pem").path
        let d = dir.path
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: "\(d)/san.ext", atomically: true, encoding: .utf8)
        try TestEnvironment.shell("""
            cd \(d) && \
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=reckerd-test-ca 2>/dev/null && \
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null && \
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null && \
            chmod 644 server.key server.pem ca.pem
            """)
        let conf = """
            daemon off;
            worker_processes 1;
            pid \(d)/nginx.pid;
            error_log \(d)/error.log warn;
            events { worker_connections 4096; }
            http {
              log_format conn '$connection $connection_requests $request_method $request_uri $status $server_protocol $request_length';
              access_log \(d)/access.log conn;
              client_body_temp_path \(d)/tmp-body; proxy_temp_path \(d)/tmp-proxy; fastcgi_temp_path \(d)/tmp-fcgi;
              uwsgi_temp_path \(d)/tmp-uwsgi; scgi_temp_path \(d)/tmp-scgi;
              keepalive_timeout 120s;
              keepalive_requests 100000;
              http2_max_concurrent_streams 256;
              server {
                listen 127.0.0.1:\(httpPort);
                listen 127.0.0.1:\(httpsPort) ssl http2;
                ssl_certificate \(d)/server.pem;
                ssl_certificate_key \(d)/server.key;
                root \(d)/www;
                location /slow/ { limit_rate 256k; limit_rate_after 0; }
                \(extraConfig)
              }
            }
            """
        try conf.write(toFile: "\(d)/nginx.conf", atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: Nginx.binary)
        process.arguments = ["-c", "\(d)/nginx.conf", "-e", "\(d)/error.log"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let port = httpPort
        guard TestEnvironment.eventually(10, { Nginx.canConnect(port: port) }) else {
            let log = (try? String(contentsOfFile: "\(d)/error.log", encoding: .utf8)) ?? ""
            process.terminate()
            throw NSError(domain: "Nginx", code: 1, userInfo: [NSLocalizedDescriptionKey: "nginx did not start: \(log)"])
        }
    }

    deinit { stop() }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    static var binary: String {
        ["/usr/sbin/nginx", "/usr/bin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/nginx"
    }

    public func url(_ path: String, https: Bool = false) -> String {
        https ? "https://localhost:\(httpsPort)\(path)" : "http://127.0.0.1:\(httpPort)\(path)"
    }

    /// One access-log line.
    public struct LogLine: Equatable {
        public var connection: Int
        public var connectionRequests: Int
        public var method: String
        public var uri: String
        public var status: Int
        public var proto: String
        public var requestLength: Int
    }

    /// The access log so far (nginx writes each line when its request ends).
    public func log() -> [LogLine] {
        let text = (try? String(contentsOfFile: dir.appendingPathComponent("access.log").path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ").map(String.init)
            guard f.count == 7, let c = Int(f[0]), let r = Int(f[1]), let s = Int(f[4]), let l = Int(f[6]) else { return nil }
            return LogLine(connection: c, connectionRequests: r, method: f[2], uri: f[3], status: s, proto: f[5], requestLength: l)
        }
    }

    /// Waits until the log holds at least `count` lines (nginx logs after sending the response).
    @discardableResult
    public func waitForLog(count: Int, seconds: Double = 5) -> [LogLine] {
        _ = TestEnvironment.eventually(seconds) { log().count >= count }
        return log()
    }

    public static func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
