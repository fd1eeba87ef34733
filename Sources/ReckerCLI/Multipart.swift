/// One -F or --form-string field.
struct FormPart {
    enum Content {
        case text(String)
        /// name=@FILE: the file, sent with a filename.
        case file(String)
        /// name=<FILE: the file's contents as the value.
        case fileContents(String)
    }

    var name: String
    var content: Content
    var type: String?
    var filename: String?

    /// Parses "name=value", "name=@file;type=T;filename=N" or "name=<file" (literal: only
    /// "name=value", taken as it is).
    static func parse(_ arg: String, literal: Bool) throws(UsageError) -> FormPart {
        guard let eq = arg.firstIndex(of: "="), eq != arg.startIndex else {
            throw UsageError("option -F '\(arg)': expected NAME=VALUE, NAME=@FILE or NAME=<FILE")
        }
        let name = String(arg[..<eq])
        var value = String(arg[arg.index(after: eq)...])
        if literal { return FormPart(name: name, content: .text(value)) }
        var type: String?
        var filename: String?
        // Attributes after the value: ;type=… ;filename=… (as curl reads them).
        var attributes: [Substring] = []
        if let semi = value.firstIndex(of: ";") {
            attributes = value[value.index(after: semi)...].split(separator: ";")
            value = String(value[..<semi])
        }
        for attr in attributes {
            let a = attr.drop { $0 == " " }
            if a.hasPrefix("type=") { type = String(a.dropFirst(5)) }
            else if a.hasPrefix("filename=") { filename = String(a.dropFirst(9)) }
            else if a.hasPrefix("headers=") || a.hasPrefix("encoder=") {
                throw UsageError("option -F '\(arg)': ;\(a.prefix { $0 != "=" })= is not supported")
            } else {
                // Not an attribute: the ';' belonged to the value, as curl takes it.
                value += ";" + a
            }
        }
        let content: Content
        if value.hasPrefix("@") {
            content = .file(String(value.dropFirst()))
        } else if value.hasPrefix("<") {
            content = .fileContents(String(value.dropFirst()))
        } else {
            content = .text(value)
        }
        return FormPart(name: name, content: content, type: type, filename: filename)
    }
}

/// multipart/form-data bodies (RFC 7578), laid out as curl lays them out.
enum Multipart {
    /// A boundary as curl makes one: 24 dashes and 16 random hex digits.
    static func newBoundary() -> String {
        let hex = String(UInt64.random(in: 0 ... .max), radix: 16)
        return String(repeating: "-", count: 24) + String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func body(_ parts: [FormPart], boundary: String) throws(UsageError) -> [UInt8] {
        var out: [UInt8] = []
        for p in parts {
            out += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(escape(p.name))\"".utf8)
            let data: [UInt8]
            var filename = p.filename
            var type = p.type
            switch p.content {
            case .text(let s):
                data = Array(s.utf8)
            case .fileContents(let path):
                data = try readAll(path)
            case .file(let path):
                data = try readAll(path)
                if filename == nil && path != "-" {
                    filename = path.split(separator: "/").last.map(String.init) ?? path
                }
                if type == nil { type = contentType(for: filename ?? "") }
            }
            if let filename { out += Array("; filename=\"\(escape(filename))\"".utf8) }
            out += Array("\r\n".utf8)
            if let type { out += Array("Content-Type: \(type)\r\n".utf8) }
            out += Array("\r\n".utf8)
            out += data
            out += Array("\r\n".utf8)
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return out
    }

    /// curl's guess from a file name's extension.
    static func contentType(for filename: String) -> String {
        let ext = filename.split(separator: ".").count > 1 ? filename.split(separator: ".").last!.lowercased() : ""
        switch ext {
        case "gif": return "image/gif"
        case "jpg", "jpeg": return "image/jpeg"
        case "png": return "image/png"
        case "svg": return "image/svg+xml"
        case "txt": return "text/plain"
        case "htm", "html": return "text/html"
        case "pdf": return "application/pdf"
        case "xml": return "application/xml"
        default: return "application/octet-stream"
        }
    }

    /// A name or filename inside double quotes: '"', CR and LF percent-encoded, as curl does.
    private static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\"": out += "%22"
            case "\r": out += "%0D"
            case "\n": out += "%0A"
            default: out.append(c)
            }
        }
        return out
    }
}
