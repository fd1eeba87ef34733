import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import ReckerProtocol

/// `reckerd [--config PATH] [--socket PATH]`: keeps warm upstream connections for the
/// short-lived processes that talk to it over a Unix socket.
enum Reckerd {
    static let usage = """
        usage: reckerd [--config PATH] [--socket PATH] [--check-config]
          --config PATH    config file (default: /etc/reckerd/reckerd.json if present, else built-in defaults)
          --socket PATH    Unix socket to serve (default: the config's, else /run/reckerd/reckerd.sock,
                           $XDG_RUNTIME_DIR/reckerd.sock or /tmp/reckerd-UID/reckerd.sock, the first writable)
          --check-config   print the effective config as JSON and exit
        """

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("reckerd: \(message)\n".utf8))
        exit(1)
    }

    static func main() {
        var configPath: String?
        var socketArg: String?
        var checkOnly = false
        var args = CommandLine.arguments.dropFirst()
        while let a = args.popFirst() {
            switch a {
            case "--config", "-c":
                guard let v = args.popFirst() else { fail("--config needs a path\n\(usage)") }
                configPath = v
            case "--socket", "-s":
                guard let v = args.popFirst() else { fail("--socket needs a path\n\(usage)") }
                socketArg = v
            case "--check-config": checkOnly = true
            case "--help", "-h": print(usage); exit(0)
            case "--version": print("reckerd protocol \(Message.version)"); exit(0)
            default: fail("unknown argument \(a)\n\(usage)")
            }
        }

        let config: DaemonConfig
        do {
            if let configPath {
                config = try ConfigLoader.load(path: configPath)
            } else if FileManager.default.fileExists(atPath: DaemonConfig.systemPath) {
                config = try ConfigLoader.load(path: DaemonConfig.systemPath)
            } else {
                config = DaemonConfig()
            }
        } catch {
            fail("\(error)")
        }

        if checkOnly {
            print(config.effectiveJSON)
            exit(0)
        }

        // Signals are taken over before the socket exists, so a stop that comes the moment
        // the socket answers is still graceful.
        let stop = DispatchSemaphore(value: 0)
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { stop.signal() }
            s.resume()
            sources.append(s)
        }

        var logger = Logger(label: "reckerd")
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
        signal(SIGPIPE, SIG_IGN)

        let path: String
        do {
            path = try socketArg ?? config.socket ?? Listener.defaultPath()
            try Listener.claim(path)
        } catch {
            fail("\(error)")
        }

        let daemon: Daemon
        do { daemon = try Daemon(config: config, logger: logger) } catch { fail("\(error)") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server: any Channel
        do { server = try Listener.bind(path, daemon: daemon, group: group) } catch {
            fail("cannot listen on \(path): \(error)")
        }
        logger.info("reckerd listening", metadata: ["socket": "\(path)", "pid": "\(getpid())"])

        stop.wait()
        logger.info("stopping: no new connections; draining requests in flight")
        try? server.close().wait()
        unlink(path)
        daemon.drainAndStop()
        try? group.syncShutdownGracefully()
        logger.info("reckerd stopped")
        exit(0)
    }
}

Reckerd.main()
