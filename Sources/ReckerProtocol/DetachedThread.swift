#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts detached POSIX threads: the client's reader and I/O threads live outside Swift's
/// cooperative pool, since they block in system calls.
enum DetachedThread {
    /// Runs `body` on a new detached thread; false when no thread could be made.
    static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        let box = Unmanaged.passRetained(Body(body))
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            #if canImport(Glibc)
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            #else
            let body = Unmanaged<Body>.fromOpaque(raw).takeRetainedValue()
            #endif
            body.run()
            return nil
        }, box.toOpaque())
        guard rc == 0 else { box.release(); return false }
        pthread_detach(tid)
        return true
    }

    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
}
