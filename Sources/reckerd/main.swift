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
                           $XDG_RUNTIME_DIR/reckerd.sock or /tmp/reckerd-UID/reckerd.sock, the first writable);
                           ignored when systemd passes a socket (socket activation)
          --check-config   print the effective config as JSON and exit
        signals: SIGTERM/SIGINT drain and stop; SIGHUP reloads the config
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
            case "--version": print("reckerd \(Message.release) (protocol \(Message.version))"); exit(0)
            default: fail("unknown argument \(a)\n\(usage)")
            }
        }

        let source = configPath ?? (FileManager.default.fileExists(atPath: DaemonConfig.systemPath) ? DaemonConfig.systemPath : nil)
        let config: DaemonConfig
        do { config = try source.map(ConfigLoader.load(path:)) ?? DaemonConfig() } catch { fail("\(error)") }
        if checkOnly {
            print(config.effectiveJSON)
            exit(0)
        }

        // Signals are taken over before the socket exists, so a stop that comes the moment
        // the socket answers is still graceful.
        let stop = DispatchSemaphore(value: 0)
        var sources: [any DispatchSourceSignal] = []
        func onSignal(_ sig: Int32, _ handler: @escaping @Sendable () -> Void) {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler(handler: handler)
            s.resume()
            sources.append(s)
        }
        onSignal(SIGINT) { stop.signal() }
        onSignal(SIGTERM) { stop.signal() }
        signal(SIGPIPE, SIG_IGN)

        // Every client and upstream connection is a descriptor: take all the system allows.
        var files = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files) == 0 && files.rlim_cur < files.rlim_max {
            files.rlim_cur = files.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
        }

        let journal = Systemd.journalStderr
        DaemonLogHandler.level.withLock { $0 = Logger.Level(rawValue: config.logLevel) ?? .info }
        LoggingSystem.bootstrap { label in DaemonLogHandler(label: label, journal: journal) }
        let logger = Logger(label: "reckerd")

        let inherited = Systemd.inheritedSocket()
        var path: String?
        if inherited == nil {
            do {
                let p = try socketArg ?? config.socket ?? Listener.defaultPath()
                try Listener.claim(p)
                path = p
            } catch {
                fail("\(error)")
            }
        }

        let daemon: Daemon
        do { daemon = try Daemon(config: config, configSource: source, logger: logger) } catch { fail("\(error)") }
        onSignal(SIGHUP) {
            Systemd.notify("RELOADING=1")
            daemon.reload()
            Systemd.notify("READY=1")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server: any Channel
        do {
            if let fd = inherited {
                if let named = socketArg ?? config.socket {
                    logger.notice("socket activation: serving the socket systemd passed; the configured socket \(named) is ignored")
                }
                server = try Listener.bind(descriptor: fd, daemon: daemon, group: group)
            } else {
                server = try Listener.bind(path!, daemon: daemon, group: group)
            }
        } catch {
            fail("cannot listen on \(path ?? "the socket systemd passed"): \(error)")
        }
        logger.info("reckerd listening", metadata: ["socket": "\(path ?? "fd \(inherited!) from systemd")", "pid": "\(getpid())"])
        Systemd.notify("READY=1\nSTATUS=listening\nMAINPID=\(getpid())")
        daemon.heartbeat.ready.store(true, ordering: .relaxed)

        stop.wait()
        Systemd.notify("STOPPING=1")
        logger.info("stopping: no new connections; draining requests in flight")
        try? server.close().wait()
        // The socket file is ours to remove only if we made it; systemd owns an inherited one.
        if let path { unlink(path) }
        daemon.drainAndStop()
        try? group.syncShutdownGracefully()
        logger.info("reckerd stopped")
        exit(0)
    }
}

Reckerd.main()
