import Foundation
import ReckerCLI
import ReckerProtocol

/// `recker-direct`: what `recker --fallback` becomes when no daemon listens. Takes the same
/// arguments and performs the request in this process through libcurl, not pooled.
let env = CLIEnvironment(
    connect: { (_: String, _: Int, settings: DirectSettings) throws(ReckerError) -> any MessageChannel in
        do { return try DirectChannel(settings) } catch { throw ReckerError(.internalError, "cannot start libcurl: \(error)") }
    },
    fallback: nil,
    direct: true)
exit(runRecker(Array(CommandLine.arguments.dropFirst()), env))
