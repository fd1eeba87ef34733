/// The versions this library was built as: reckerd's release (the binaries of the same
/// build print it with `--version`) and the wire protocol version it speaks.
public enum ReckerVersion {
    /// reckerd's release, in semantic versioning; the git tag is `v` followed by it.
    public static let release = "0.1.0"
    /// The version of docs/PROTOCOL.md this library speaks (HELLO offers exactly it).
    public static let protocolVersion: UInt16 = 1
}
