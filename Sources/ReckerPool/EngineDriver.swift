import CReckerCurl

/// How the engine thread waits for upstream socket activity and how other threads wake
/// it. Kept small so an epoll-driven driver (`curl_multi_socket_action`) can replace the
/// poll-based one without touching the engine's logic.
protocol EngineDriver: Sendable {
    /// Lets libcurl make progress on every transfer that can.
    func perform()
    /// Blocks until a socket is ready, `wake()` is called, or `timeoutMs` passes.
    func wait(timeoutMs: Int32)
    /// Ends a `wait` early; callable from any thread.
    func wake()
}

/// The driver built on `curl_multi_poll` and `curl_multi_wakeup`.
struct PollDriver: EngineDriver {
    let multi: MultiHandle

    func perform() {
        var running: Int32 = 0
        curl_multi_perform(multi.raw, &running)
    }

    func wait(timeoutMs: Int32) {
        curl_multi_poll(multi.raw, nil, 0, timeoutMs, nil)
    }

    func wake() {
        curl_multi_wakeup(multi.raw)
    }
}
