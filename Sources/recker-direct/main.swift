import Foundation
import ReckerCLI
import ReckerProtocol
import Synchronization

/// `recker-direct`: what `recker --fallback` becomes when no daemon listens. Takes the same
/// arguments and performs the request in this process through libcurl, not pooled.
/// Every engine started, each stopped (its thread joined) before the process exits: exit
/// handlers (OpenSSL's among them) must not run beside an engine thread still ending.
let opened = Mutex<[DirectChannel]>([])
let env = CLIEnvironment(
    connect: { (_: String, _: Int, settings: DirectSettings) throws(ReckerError) -> any MessageChannel in
        do {
            let channel = try DirectChannel(settings)
            opened.withLock { $0.append(channel) }
            return channel
        } catch { throw ReckerError(.internalError, "cannot start libcurl: \(error)") }
    },
    fallback: nil,
    direct: true)
let status = runRecker(Array(CommandLine.arguments.dropFirst()), env)
for channel in opened.withLock({ $0 }) { channel.stop() }
exit(status)
