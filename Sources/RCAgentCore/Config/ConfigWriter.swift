import FoundationEssentials
import Glibc

/// Writes a profile's `url` (and, when login is given `--backend`, its `backend`) into the config file, keeping everything else (comments, unknown
/// keys, other profiles) as the user wrote it.
///
/// The write is two-phase so that login can put the keyring item in place between the two:
/// ``prepare(profile:url:)`` writes a uniquely named sibling temp file (`mkstemp`: created with
/// `O_EXCL`, 0600, flushed) and checks that it parses to the intended value;
/// ``PreparedConfig/commit()`` renames it over the file and flushes the directory;
/// ``PreparedConfig/discard()`` removes it. The config file is never seen half-written.
///
/// A config that is a symbolic link (dotfiles) is followed: the file it points to is rewritten and
/// the link stays. A link to nothing, something that is not a regular file, or a file another user
/// owns is refused with a message that says so.
public struct ConfigWriter: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// Stages the config with `[profiles.PROFILE] url = URL` (and `backend = BACKEND` when given) set.
    public func prepare(profile: String, url: String, backend: CredentialBackend? = nil) throws -> PreparedConfig {
        try prepare(
            key: "profiles.\(profile)",
            check: { $0.profiles[profile]?.url == url && (backend == nil || $0.profiles[profile]?.backend == backend) }
        ) {
            var updated = Self.setting("url", to: url, profile: profile, in: $0)
            if let backend { updated = Self.setting("backend", to: backend.rawValue, profile: profile, in: updated) }
            return updated
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
        let target = try Self.target(of: path)
        let original = try FileManager.default.contents(atPath: target).map { data -> String in
            guard let text = String(data: data, encoding: .utf8) else {
                throw ConfigError(path: path, line: nil, key: nil, reason: "the file is not UTF-8")
            }
            return text
        } ?? ""
        let updated = update(original)
        guard check(try ConfigFile.parse(updated, path: path)) else {
            throw ConfigError(path: path, line: nil, key: key, reason: "could not be updated automatically; set it by hand")
        }
        let directory = PathText.directory(of: target)
        try PrivateFiles.makeDirectory(directory)
        let name = PathText.name(of: target)
        let temp = try PrivateFiles.writeTemporary(Data(updated.utf8), in: directory, prefix: "." + name)
        return PreparedConfig(tempPath: temp, path: target)
    }

    /// The file to rewrite for `path`: `path` itself, or the file its symbolic link names.
    /// Throws ``ConfigError`` for a link to nothing, a non-regular file or another user's file.
    static func target(of path: String) throws -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return path }
            throw ConfigError(path: path, line: nil, key: nil, reason: "cannot be inspected: \(String(cString: strerror(errno)))")
        }
        var target = path
        if info.st_mode & S_IFMT == S_IFLNK {
            guard let resolved = realpath(path, nil) else {
                let destination = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
                throw ConfigError(
                    path: path, line: nil, key: nil,
                    reason: "is a symbolic link to \(destination), which does not exist; create that file, or "
                        + "replace the link with a regular file")
            }
            target = String(cString: resolved)
            free(resolved)
            guard stat(target, &info) == 0 else {
                throw ConfigError(path: path, line: nil, key: nil, reason: "cannot be inspected: \(String(cString: strerror(errno)))")
            }
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw ConfigError(path: path, line: nil, key: nil, reason: "is not a regular file; refusing to replace it")
        }
        guard info.st_uid == geteuid() else {
            throw ConfigError(
                path: path, line: nil, key: nil,
                reason: "\(target == path ? "is" : "points to \(target), which is") owned by uid \(info.st_uid), not by "
                    + "you (uid \(geteuid())); rc-agent does not rewrite another user's file")
        }
        return target
    }

    /// `text` with the profile's `key` line replaced, or added under its table, or a new table appended.
    static func setting(_ key: String, to value: String, profile: String, in text: String) -> String {
        let headers: Set<String> = ["[profiles.\(profile)]", "[profiles.\"\(profile)\"]", "[profiles.'\(profile)']"]
        return setting(key, to: value, headers: headers, newHeader: "[profiles.\(profile)]", in: text)
    }

    /// `text` with `key = "value"` replaced in the table that starts with one of `headers`, or added
    /// under that table's header, or a new table `newHeader` appended. Every other line is kept.
    static func setting(_ key: String, to value: String, headers: Set<String>, newHeader: String, in text: String) -> String {
        var lines = text.components(separatedBy: "\n")
        let assignment = "\(key) = \(tomlQuoted(value))"
        if let headerIndex = lines.firstIndex(where: { headers.contains($0.trimmingBlanks()) }) {
            var index = headerIndex + 1
            while index < lines.count, !lines[index].trimmingBlanks().hasPrefix("[") {
                let trimmed = lines[index].trimmingBlanks()
                if trimmed.hasPrefix(key), trimmed.dropFirst(key.count).trimmingBlanks().hasPrefix("=") {
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
                out += "\\u" + CFormat.hex4(scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A staged config file; exactly one of `commit()` or `discard()` should follow.
public struct PreparedConfig: Sendable {
    let tempPath: String
    /// The file that is replaced (a symbolic link's target).
    let path: String

    /// Atomically replaces the config file with the staged one.
    public func commit() throws {
        do {
            try PrivateFiles.replace(path, with: tempPath)
        } catch let error as FileWriteError {
            throw ConfigError(path: path, line: nil, key: nil, reason: "could not be written: \(error.reason)")
        }
    }

    /// Removes the staged file; the config file stays as it was.
    public func discard() { unlink(tempPath) }
}

/// Files and directories only the user can read: config, state, the socket's directory.
public enum PrivateFiles {
    /// Creates `path` (and parents) with mode 0700; an existing directory keeps its mode.
    public static func makeDirectory(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o700) == 0 {
                chmod(prefix, 0o700)  // whatever the umask
                continue
            }
            let failure = errno
            var info = stat()
            guard failure == EEXIST, stat(prefix, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw FileWriteError(
                    path: path, reason: failure == EEXIST ? "\(prefix) is not a directory" : errnoText(failure))
            }
        }
    }

    /// Writes `data` to a new file `DIRECTORY/PREFIX.XXXXXX` with a unique name (`mkstemp`:
    /// `O_EXCL`, so nothing already there — a file, a planted symlink — is ever opened), mode 0600
    /// whatever the umask, flushed to disk. Returns its path; the caller renames or removes it.
    public static func writeTemporary(_ data: Data, in directory: String, prefix: String) throws -> String {
        var template = Array((directory + "/" + prefix + ".XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FileWriteError(path: directory, reason: String(cString: strerror(errno))) }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { close(fd) }
        func fail() -> FileWriteError {
            let reason = String(cString: strerror(errno))
            unlink(path)
            return FileWriteError(path: path, reason: reason)
        }
        guard fcntl(fd, F_SETFD, FD_CLOEXEC) == 0, fchmod(fd, 0o600) == 0 else { throw fail() }
        let written = data.withUnsafeBytes { buffer -> Int in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 { if errno == EINTR { continue }; return -1 }
                offset += n
            }
            return offset
        }
        guard written == data.count, fsync(fd) == 0 else { throw fail() }
        return path
    }

    /// Renames `temporary` over `path` and flushes the directory, so the new name survives a crash.
    /// On failure `temporary` is removed and `path` is as it was.
    public static func replace(_ path: String, with temporary: String) throws {
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw FileWriteError(path: path, reason: reason)
        }
        let directory = open(PathText.directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            // The rename is done: a directory that cannot be flushed is not a reason to undo it.
            _ = fsync(directory)
            close(directory)
        }
    }
}

/// A file or directory could not be written.
public struct FileWriteError: RCAgentError, Equatable {
    public let path: String
    public let reason: String
    package init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var code: ErrorCode { .fileError }
    public var message: String { "cannot write \(path): \(reason)" }
    public var hint: String? { "check the directory's permissions and free space" }
}
