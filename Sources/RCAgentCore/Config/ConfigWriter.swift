import Foundation

/// Writes a profile's `url` into the config file, keeping everything else (comments, unknown
/// keys, other profiles) as the user wrote it.
///
/// The write is two-phase so that login can put the keyring item in place between the two:
/// ``prepare(profile:url:)`` writes a sibling temp file (0600, directory 0700) and checks that it
/// parses to the intended value; ``PreparedConfig/commit()`` renames it over the file;
/// ``PreparedConfig/discard()`` removes it. The config file is never seen half-written.
public struct ConfigWriter: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// Stages the config with `[profiles.PROFILE] url = URL` set.
    public func prepare(profile: String, url: String) throws -> PreparedConfig {
        try prepare(key: "profiles.\(profile).url", check: { $0.profiles[profile]?.url == url }) {
            Self.setting(url: url, profile: profile, in: $0)
        }
    }

    /// Stages the config with `[defaults] profile = PROFILE` set (`rc-agent profile use`).
    public func prepare(defaultProfile profile: String) throws -> PreparedConfig {
        try prepare(key: "defaults.profile", check: { $0.defaultProfile == profile }) {
            Self.setting("profile", to: profile, headers: ["[defaults]"], newHeader: "[defaults]", in: $0)
        }
    }

    /// Stages `update(current text)`, after checking that it parses and `check` holds for it.
    private func prepare(
        key: String, check: (ConfigFile) -> Bool, update: (String) -> String
    ) throws -> PreparedConfig {
        let original = try FileManager.default.contents(atPath: path).map { data -> String in
            guard let text = String(data: data, encoding: .utf8) else {
                throw ConfigError(path: path, line: nil, key: nil, reason: "the file is not UTF-8")
            }
            return text
        } ?? ""
        let updated = update(original)
        guard check(try ConfigFile.parse(updated, path: path)) else {
            throw ConfigError(path: path, line: nil, key: key, reason: "could not be updated automatically; set it by hand")
        }
        let directory = (path as NSString).deletingLastPathComponent
        try PrivateFiles.makeDirectory(directory)
        let temp = directory + "/.config.toml.\(getpid()).tmp"
        try PrivateFiles.write(Data(updated.utf8), to: temp)
        return PreparedConfig(tempPath: temp, path: path)
    }

    /// `text` with the profile's url line replaced, or added under its table, or a new table appended.
    static func setting(url: String, profile: String, in text: String) -> String {
        let headers: Set<String> = ["[profiles.\(profile)]", "[profiles.\"\(profile)\"]", "[profiles.'\(profile)']"]
        return setting("url", to: url, headers: headers, newHeader: "[profiles.\(profile)]", in: text)
    }

    /// `text` with `key = "value"` replaced in the table that starts with one of `headers`, or added
    /// under that table's header, or a new table `newHeader` appended. Every other line is kept.
    static func setting(_ key: String, to value: String, headers: Set<String>, newHeader: String, in text: String) -> String {
        var lines = text.components(separatedBy: "\n")
        let assignment = "\(key) = \(tomlQuoted(value))"
        if let headerIndex = lines.firstIndex(where: { headers.contains($0.trimmingCharacters(in: .whitespaces)) }) {
            var index = headerIndex + 1
            while index < lines.count, !lines[index].trimmingCharacters(in: .whitespaces).hasPrefix("[") {
                let trimmed = lines[index].trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix(key), trimmed.dropFirst(key.count).trimmingCharacters(in: .whitespaces).hasPrefix("=") {
                    lines[index] = assignment
                    return lines.joined(separator: "\n")
                }
                index += 1
            }
            lines.insert(assignment, at: headerIndex + 1)
            return lines.joined(separator: "\n")
        }
        var result = text
        if !result.isEmpty && !result.hasSuffix("\n") { result += "\n" }
        if !result.isEmpty { result += "\n" }
        return result + "\(newHeader)\n\(assignment)\n"
    }

    static func tomlQuoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += String(format: "\\u%04X", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A staged config file; exactly one of `commit()` or `discard()` should follow.
public struct PreparedConfig: Sendable {
    let tempPath: String
    let path: String

    /// Atomically replaces the config file with the staged one.
    public func commit() throws {
        guard rename(tempPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            discard()
            throw ConfigError(path: path, line: nil, key: nil, reason: "could not be written: \(reason)")
        }
    }

    /// Removes the staged file; the config file stays as it was.
    public func discard() { unlink(tempPath) }
}

/// Files and directories only the user can read: config, state, the socket's directory.
public enum PrivateFiles {
    /// Creates `path` (and parents) with mode 0700; an existing directory keeps its mode.
    public static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw FileWriteError(path: path, reason: (error as NSError).localizedDescription)
        }
    }

    /// Writes `data` to a new file at `path` with mode 0600, flushed to disk.
    public static func write(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        // O_TRUNC on an existing file keeps its old mode: make sure it is private.
        fchmod(fd, 0o600)
        let written = data.withUnsafeBytes { buffer -> Int in
            var offset = 0
            while offset < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 { if errno == EINTR { continue }; return -1 }
                offset += n
            }
            return offset
        }
        guard written == data.count, fsync(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw FileWriteError(path: path, reason: reason)
        }
    }
}

/// A file or directory could not be written.
public struct FileWriteError: RCAgentError, Equatable {
    public let path: String
    public let reason: String
    public var code: ErrorCode { .fileError }
    public var message: String { "cannot write \(path): \(reason)" }
    public var hint: String? { "check the directory's permissions and free space" }
}
