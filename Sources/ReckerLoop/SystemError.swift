import Glibc

/// A system call that failed: which, and its errno. The one place the loop's callers turn
/// a -1 into a typed error.
package struct SystemError: Error, CustomStringConvertible, Sendable {
    package let call: String
    package let errno: Int32

    package init(_ call: String, _ errno: Int32) {
        self.call = call
        self.errno = errno
    }

    package var description: String { "\(call): \(String(cString: strerror(errno)))" }

    /// Runs `body` until it returns something other than -1 with EINTR; -1 otherwise
    /// becomes an error naming `call`.
    @discardableResult
    package static func check(_ call: @autoclosure () -> String, _ body: () -> Int32) throws(SystemError) -> Int32 {
        while true {
            let r = body()
            if r >= 0 { return r }
            let e = Glibc.errno
            if e == EINTR { continue }
            throw SystemError(call(), e)
        }
    }

    /// As `check`, for calls that return a byte count.
    package static func retrying(_ body: () -> Int) -> (Int, Int32) {
        while true {
            let r = body()
            if r >= 0 { return (r, 0) }
            let e = Glibc.errno
            if e != EINTR { return (-1, e) }
        }
    }
}
