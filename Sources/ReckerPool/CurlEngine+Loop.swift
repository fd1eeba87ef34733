import CReckerCurl
import Glibc
import ReckerLoop
import ReckerProtocol

/// libcurl on the event loop: its sockets are watched by the loop's epoll and its timer is
/// a loop timer (`curl_multi_socket_action`), so a transfer makes progress exactly when one
/// of its sockets is ready, with no pass over every transfer and no thread of its own.
extension CurlEngine {
    func installMultiCallbacks() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        recker_multi_setopt_socket(multi.raw) { _, fd, what, userp, _ in
            Unmanaged<CurlEngine>.fromOpaque(userp!).takeUnretainedValue().watch(fd, what)
            return 0
        }
        recker_multi_setopt_pointer(multi.raw, CURLMOPT_SOCKETDATA, me)
        recker_multi_setopt_timer(multi.raw) { _, timeoutMs, userp in
            Unmanaged<CurlEngine>.fromOpaque(userp!).takeUnretainedValue().setCurlTimer(timeoutMs)
            return 0
        }
        recker_multi_setopt_pointer(multi.raw, CURLMOPT_TIMERDATA, me)
    }

    /// libcurl's socket callback: what to wait for on `fd` (CURL_POLL_*).
    private func watch(_ fd: Int32, _ what: Int32) {
        var interest: EventLoop.Events = []
        switch what {
        case CURL_POLL_IN: interest = .readable
        case CURL_POLL_OUT: interest = .writable
        case CURL_POLL_INOUT: interest = [.readable, .writable]
        default:
            // Parked, not unregistered: the next request on this connection usually wants
            // what it last did, which then costs no epoll_ctl (a DEL and an ADD per request
            // before). An event while parked unregisters it (`socketReady`); a close or a new
            // socket under the number drops it (`dropWatch`).
            if let r = curlSockets[fd], loop.isRegistered(r) { parkedSockets.insert(fd) } else { curlSockets[fd] = nil }
            return
        }
        parkedSockets.remove(fd)
        if let r = curlSockets[fd], loop.isRegistered(r) {
            loop.modify(r, interest)
            return
        }
        do {
            curlSockets[fd] = try loop.register(fd, interest) { [unowned self] events in socketReady(fd, events) }
        } catch {
            warn("cannot watch an upstream socket: \(error)")
        }
    }

    /// libcurl's timer callback: call back in `timeoutMs` (-1: never), unless it storms
    /// (`TimerStorm`).
    private func setCurlTimer(_ timeoutMs: Int) {
        loop.cancel(&curlTimer)
        let (delay, warnNow) = timerStorm.request(timeoutMs, duringTimeout: inCurlTimeout)
        if warnNow { warn(timerStorm.warning(holding: holding)) }
        guard let delay else { return }
        curlTimer = loop.schedule(at: loop.now &+ delay * 1_000_000) { [unowned self] in
            curlTimer = nil
            inCurlTimeout = true
            act(on: CURL_SOCKET_TIMEOUT, 0)
            inCurlTimeout = false
        }
    }

    private func socketReady(_ fd: Int32, _ events: EventLoop.Events) {
        timerStorm.socketEvent()
        if parkedSockets.contains(fd) {
            // libcurl does not watch it (an idle connection the upstream wrote to or closed):
            // it finds out when it next looks at the connection; an idle HTTP/1 one is closed.
            dropWatch(fd)
            if !events.isDisjoint(with: [.readable, .hangup, .readHangup]) { engineWork { idleSocketStirred(fd) } }
            return
        }
        var mask: Int32 = 0
        if !events.isDisjoint(with: [.readable, .hangup, .readHangup]) { mask |= CURL_CSELECT_IN }
        if events.contains(.writable) { mask |= CURL_CSELECT_OUT }
        if events.contains(.error) { mask |= CURL_CSELECT_ERR }
        act(on: fd, mask)
    }

    private func act(on fd: Int32, _ mask: Int32) {
        engineWork {
            var running: Int32 = 0
            curl_multi_socket_action(multi.raw, fd, mask, &running)
        }
    }

    /// Stops watching `fd` for libcurl, parked or not: it is being closed, or a new socket
    /// took its number.
    func dropWatch(_ fd: Int32) {
        parkedSockets.remove(fd)
        if let r = curlSockets.removeValue(forKey: fd) { loop.unregister(r) }
    }

    /// The dead socket now stands where a watched one was: epoll must watch it instead.
    func socketReplaced(_ fd: Int32) {
        if let r = curlSockets[fd] { loop.refresh(r) }
    }
}
