import CReckerLoop
import Glibc
import Logging
import ReckerLoop
import ReckerPool
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
        let line = Array("reckerd: \(message)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
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
            case "--version": print("reckerd \(Message.release) (protocol \(Message.version), libcurl \(Libcurl.version))"); exit(0)
            default: fail("unknown argument \(a)\n\(usage)")
            }
        }

        if let refusal = Libcurl.refusal { fail(refusal) }

        let source = configPath ?? (access(DaemonConfig.systemPath, F_OK) == 0 ? DaemonConfig.systemPath : nil)
        let config: DaemonConfig
        do { config = try source.map(ConfigLoader.load(path:)) ?? DaemonConfig() } catch { fail("\(error)") }
        if checkOnly {
            print(config.effectiveJSON)
            exit(0)
        }

        // Signals are taken over before the socket exists, so a stop that comes the moment
        // the socket answers is still graceful. Each arrives on the loop as a byte.
        let loop: EventLoop
        do { loop = try EventLoop() } catch { fail("\(error)") }
        var signalPipe: [Int32] = [0, 0]
        guard pipe(&signalPipe) == 0 else { fail("pipe: \(String(cString: strerror(errno)))") }
        for end in signalPipe {
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        for sig in [SIGINT, SIGTERM, SIGHUP] { _ = recker_signal_to_fd(sig, signalPipe[1]) }
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

        let passed = Systemd.inheritedSockets()
        let inherited = passed.main
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
        do { daemon = try Daemon(config: config, configSource: source, logger: logger, loop: loop) } catch { fail("\(error)") }
        // The fronts listen before the main socket does, so a client that finds the main
        // socket answering finds them too.
        let fronts = startFronts(config: config, mainSocket: path, passedHTTP: passed.http, daemon: daemon, logger: logger)
        let listener: Listener
        do {
            if let fd = inherited {
                if let named = socketArg ?? config.socket {
                    logger.notice("socket activation: serving the socket systemd passed; the configured socket \(named) is ignored")
                }
                listener = try Listener.adopt(descriptor: fd, daemon: daemon)
            } else {
                listener = try Listener.bind(path!, daemon: daemon)
            }
        } catch {
            fail("cannot listen on \(path ?? "the socket systemd passed"): \(error)")
        }

        var stopping = false
        func stop() {
            guard !stopping else { return }
            stopping = true
            Systemd.notify("STOPPING=1")
            logger.info("stopping: no new connections; draining requests in flight")
            listener.close()
            for front in fronts { front.close() }
            daemon.drainAndStop { loop.stop() }
        }
        do {
            try loop.register(signalPipe[0], .readable) { _ in
                var bytes = [UInt8](repeating: 0, count: 16)
                let n = bytes.withUnsafeMutableBytes { read(signalPipe[0], $0.baseAddress, $0.count) }
                for sig in bytes.prefix(max(0, n)) {
                    if Int32(sig) == SIGHUP {
                        daemon.requestReload { Systemd.notify($0) }
                    } else {
                        stop()
                    }
                }
            }
        } catch {
            fail("cannot watch signals: \(error)")
        }

        logger.info("reckerd listening", metadata: ["socket": "\(path ?? "fd \(inherited!) from systemd")", "pid": "\(getpid())"])
        Systemd.notify("READY=1\nSTATUS=listening\nMAINPID=\(getpid())")
        daemon.heartbeat.ready.store(true, ordering: .relaxed)
        // A ping is due `interval` after the last, and goes out at the first pass after that:
        // passes at most half an interval apart keep every gap under 1.5 intervals, within
        // WATCHDOG_USEC (2 intervals). The loop passes at least once a second by itself.
        if let interval = Systemd.watchdogInterval, interval < 2 { daemon.wake(every: interval / 2) }
        loop.run()
        Systemd.flush(within: 2)
        logger.info("reckerd stopped")
        exit(0)
    }

    /// The HTTP front's listeners (its Unix socket, its loopback port) and the metrics
    /// port, as the config asks. The front's socket defaults to `http.sock` beside the
    /// daemon's own socket, in the same trusted directory (`/run/reckerd/http.sock` for
    /// the system daemon). One systemd passed (named `http`) is served instead, even with
    /// the front off, so its clients hear why (503) rather than wait on a socket no one reads.
    static func startFronts(config: DaemonConfig, mainSocket: String?, passedHTTP: Int32?, daemon: Daemon, logger: Logger) -> [Listener] {
        var listeners: [Listener] = []
        if let fd = passedHTTP {
            do { listeners.append(try Listener.adopt(descriptor: fd, daemon: daemon, kind: .httpUnix)) } catch {
                fail("cannot serve the HTTP front's socket systemd passed: \(error)")
            }
            if let named = config.http.socket {
                logger.notice("socket activation: serving the HTTP front's socket systemd passed; http.socket \(named) is ignored")
            }
            if !config.http.enabled {
                logger.warning("systemd passed the HTTP front's socket but http.enabled is false: its requests are answered 503")
            }
            logger.info("HTTP front listening", metadata: ["socket": "fd \(fd) from systemd"])
        } else if config.http.enabled {
            let dir = SocketPaths.directory(of: mainSocket ?? SocketPaths.system)
            let path = config.http.socket ?? dir + "/http.sock"
            do {
                try Listener.claim(path)
                listeners.append(try Listener.bind(path, daemon: daemon, kind: .httpUnix))
            } catch {
                fail("cannot listen on the HTTP front's socket \(path): \(error)")
            }
            logger.info("HTTP front listening", metadata: ["socket": "\(path)"])
        }
        if config.http.enabled {
            if let address = config.http.listen {
                do { listeners.append(try Listener.bind(address, daemon: daemon, kind: .httpTCP)) } catch {
                    fail("cannot listen on http.listen \(address): \(error)")
                }
                logger.info("HTTP front listening", metadata: ["address": "\(address)"])
            }
        }
        if let address = config.metricsListen {
            do { listeners.append(try Listener.bind(address, daemon: daemon, kind: .metrics)) } catch {
                fail("cannot listen on metrics.listen \(address): \(error)")
            }
            logger.info("metrics listening", metadata: ["address": "\(address)", "path": "/metrics"])
        }
        return listeners
    }
}

Reckerd.main()
