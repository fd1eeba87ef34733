/// A config the daemon refuses (or a start it cannot make), with the place at fault: the
/// file, line and column, and the key path.
struct ConfigError: Error, CustomStringConvertible {
    var description: String
}
