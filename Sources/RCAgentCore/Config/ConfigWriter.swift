import Foundation

/// Writes a profile's `url` (and, when login is given `--backend`, its `backend`) into the config file, keeping everything else (comments, unknown
/// keys, other profiles) as the user wrote it.
///
/// The write is two-phase so that login can put the keyring item in place between the two:
/// ``prepare(profile:url:)`` writes a sibling temp file (0600, directory 0700) and checks that it
/// parses to the intended value; ``PreparedConfig/commit()`` renames it over the file;
/// ``PreparedConfig/discard()`` removes it. The config file is never seen half-written.
public struct ConfigWriter: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// Stages the config with `[profiles.PROFILE] url = URL` (and `backend = BACKEND` when given) set.
    public func prepare(profile: String, url: String, backend: CredentialBackend? = nil) throws -> PreparedConfig {
        let original = try FileManager.default.contents(atPath: path).map { data -> String in
            guard let text = String(data: data, encoding: .utf8) else {
                throw ConfigError(path: path, line: nil, key: nil, reason: "the file is not UTF-8")
            }
            return text
        } ?? ""
        var updated = Self.setting("url", to: url, profile: profile, in: original)
        if let backend { updated = Self.setting("backend", to: backend.rawValue, profile: profile, in: updated) }
        let check = try ConfigFile.parse(updated, path: path)
        guard check.profiles[profile]?.url == url else {
            throw ConfigError(path: path, line: nil, key: "profiles.\(profile).url",
                reason: "could not be updated automatically; set it by hand")
        }
        if let backend, check.profiles[profile]?.backend != backend {
            throw ConfigError(path: path, line: nil, key: "profiles.\(profile).backend",
                reason: "could not be updated automatically; set it by hand")
        }
        let directory = (path as NSString).deletingLastPathComponent
        try PrivateFiles.makeDirectory(directory)
        let temp = directory + "/.config.toml.\(getpid()).tmp"
        try PrivateFiles.write(Data(updated.utf8), to: temp)
        return PreparedConfig(tempPath: temp, path: path)
    }

    /// `text` with the profile's `key` line replaced, or added under its table, or a new table appended.
    static func setting(_ key: String, to value: String, profile: String, in text: String) -> String {
        var lines = text.components(separatedBy: "\n")
        let assignment = "\(key) = \(tomlQuoted(value))"
        let headers: Set<String> = ["[profiles.\(profile)]", "[profiles.\"\(profile)\"]", "[profiles.'\(profile)']"]
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
        return result + "[profiles.\(profile)]\n\(assignment)\n"
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
