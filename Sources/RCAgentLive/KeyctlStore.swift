import CKeyutils
import FoundationEssentials
import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

/// The `keyctl` backend: the Linux kernel keyring through libkeyutils.
///
/// One key of type `user` per profile, described `rc-agent:PROFILE`, in the user's persistent
/// keyring (`keyctl_get_persistent`), which is linked into the user keyring so that
/// `keyctl show @u` lists it. The description never holds the secret; the payload is
/// `rc-agent 1`, then `client_id=`, `url=`, `created=` (UNIX seconds) and `secret=` lines.
/// Permissions: possessor and owner only. The persistent keyring outlives the login session
/// until the kernel's expiry (`/proc/sys/kernel/keys/persistent_keyring_expiry`, 3 days by
/// default, counted from the last use), not a reboot.
///
/// Replacing a key is one `add_key` (the kernel swaps the payload atomically), so a profile
/// never has two keys and ``reconcile(profile:)`` has nothing to do.
public struct KeyctlStore: CredentialStore {
    /// The description prefix of rc-agent's keys.
    public static let prefix = CredentialBackend.keyctlKeyPrefix

    public init() {}

    public func backend(for profile: String) -> CredentialBackend { .keyctl }

    public func load(profile: String) async throws -> StoredCredential? {
        let keyring = try persistentKeyring()
        guard let key = try find(profile, in: keyring) else { return nil }
        return try read(key, profile: profile)
    }

    public func save(_ credential: StoredCredential) async throws {
        let keyring = try persistentKeyring()
        var payload = Array(Payload.encode(credential).utf8)
        defer { wipe(&payload) }
        let description = Self.prefix + credential.profile
        // add_key on an existing key replaces its payload in place: that key is the working one,
        // so a failure afterwards must not invalidate it.
        let existed = try find(credential.profile, in: keyring) != nil
        let key = payload.withUnsafeBytes {
            add_key("user", description, $0.baseAddress, $0.count, keyring)
        }
        guard key >= 0 else { throw failure("store the key", errno, writing: true) }
        guard keyctl_setperm(key, rc_key_owner_only) == 0 else {
            let code = errno
            if !existed { keyctl_invalidate(key) }
            throw failure("restrict the key's permissions", code, writing: true)
        }
    }

    @discardableResult
    public func delete(profile: String) async throws -> Bool {
        let keyring = try persistentKeyring()
        guard let key = try find(profile, in: keyring) else { return false }
        guard keyctl_invalidate(key) == 0 || keyctl_unlink(key, keyring) == 0 else {
            throw failure("remove the key", errno, writing: true)
        }
        return true
    }

    public func list() async throws -> [CredentialSummary] {
        let keyring = try persistentKeyring()
        var buffer: UnsafeMutableRawPointer?
        let size = keyctl_read_alloc(keyring, &buffer)
        guard size >= 0, let buffer else { throw failure("list the persistent keyring", errno, writing: false) }
        defer { free(buffer) }
        let ids = (0..<Int(size) / MemoryLayout<key_serial_t>.size).map {
            buffer.load(fromByteOffset: $0 * MemoryLayout<key_serial_t>.size, as: key_serial_t.self)
        }
        var summaries: [CredentialSummary] = []
        for id in ids {
            guard let (type, description) = describe(id), type == "user", description.hasPrefix(Self.prefix) else {
                continue
            }
            let profile = String(description.dropFirst(Self.prefix.count))
            guard let credential = try? read(id, profile: profile) else { continue }
            summaries.append(CredentialSummary(
                profile: profile, clientID: credential.clientID, url: credential.url, created: credential.created,
                locked: false))
        }
        return summaries.sorted { $0.profile < $1.profile }
    }

    @discardableResult
    public func reconcile(profile: String) async throws -> Bool { false }

    // MARK: Kernel calls

    /// The user's persistent keyring, linked into the user keyring (`@u`, where `keyctl show @u`
    /// finds it) and into this process's keyring: a process possesses only keys it can reach from
    /// its own keyrings, and setting a new key's permissions needs possession (a fresh session
    /// keyring — `keyctl session -`, a system service's private one — does not lead to `@u`).
    private func persistentKeyring() throws -> key_serial_t {
        _ = keyctl_get_persistent(uid_t.max, rc_key_spec_process_keyring)
        let keyring = keyctl_get_persistent(uid_t.max, rc_key_spec_user_keyring)
        guard keyring >= 0 else {
            let code = errno
            throw KeyringError.kernelUnavailable(
                detail: code == EOPNOTSUPP
                    ? "this kernel has no persistent keyrings (CONFIG_PERSISTENT_KEYRINGS)"
                    : "keyctl_get_persistent: \(String(cString: strerror(code)))")
        }
        return key_serial_t(keyring)
    }

    private func find(_ profile: String, in keyring: key_serial_t) throws -> key_serial_t? {
        let key = keyctl_search(keyring, "user", Self.prefix + profile, 0)
        if key >= 0 { return key_serial_t(key) }
        let code = errno
        if code == ENOKEY || code == EKEYEXPIRED || code == EKEYREVOKED { return nil }
        throw failure("look for the key", code, writing: false)
    }

    private func read(_ key: key_serial_t, profile: String) throws -> StoredCredential {
        var buffer: UnsafeMutableRawPointer?
        let size = keyctl_read_alloc(key, &buffer)
        guard size >= 0, let buffer else { throw failure("read the key", errno, writing: false) }
        defer {
            memset(buffer, 0, Int(size))
            free(buffer)
        }
        let text = String(decoding: UnsafeRawBufferPointer(start: buffer, count: Int(size)), as: UTF8.self)
        guard let credential = Payload.decode(text, profile: profile) else {
            throw KeyringError.failed(detail: "the kernel key '\(Self.prefix)\(profile)' was not written by rc-agent")
        }
        return credential
    }

    /// `(type, description)` of a key.
    private func describe(_ key: key_serial_t) -> (String, String)? {
        var buffer: UnsafeMutablePointer<CChar>?
        guard keyctl_describe_alloc(key, &buffer) >= 0, let buffer else { return nil }
        defer { free(buffer) }
        // "type;uid;gid;perm;description": the description may itself contain ';'.
        let fields = String(cString: buffer).split(separator: ";", maxSplits: 4, omittingEmptySubsequences: false)
        guard fields.count == 5 else { return nil }
        return (String(fields[0]), String(fields[4]))
    }

    private func failure(_ action: String, _ code: Int32, writing: Bool) -> KeyringError {
        let detail = "cannot \(action) in the kernel keyring: \(String(cString: strerror(code)))"
        switch code {
        case ENOSYS:
            return .kernelUnavailable(detail: detail + " (a container's seccomp profile may forbid keyctl)")
        case EPERM where !writing:
            return .kernelUnavailable(detail: detail + " (a container's seccomp profile may forbid keyctl)")
        case EDQUOT, EACCES, EPERM:
            return writing ? .writeRefused(detail: detail) : .failed(detail: detail)
        default:
            return .failed(detail: detail)
        }
    }

    private func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0, $0.count) }
    }

    /// The key's payload: attribute lines, the secret last (it is the rest of the payload).
    enum Payload {
        static let header = "rc-agent 1"

        static func encode(_ credential: StoredCredential) -> String {
            [
                header, "client_id=\(credential.clientID)", "url=\(credential.url)",
                "created=\(Int64(credential.created.timeIntervalSince1970.rounded(.down)))",
                "secret=\(credential.secret.reveal())",
            ].joined(separator: "\n")
        }

        static func decode(_ text: String, profile: String) -> StoredCredential? {
            guard text.hasPrefix(header + "\n"), let secretRange = text.firstRange(of: "\nsecret=") else { return nil }
            var fields: [String: String] = [:]
            for line in text[..<secretRange.lowerBound].split(separator: "\n").dropFirst() {
                guard let equals = line.firstIndex(of: "=") else { continue }
                fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            guard let clientID = fields["client_id"], let url = fields["url"],
                let created = fields["created"].flatMap(Double.init)
            else { return nil }
            return StoredCredential(
                profile: profile, clientID: clientID, url: url, secret: Secret(String(text[secretRange.upperBound...])),
                created: Date(timeIntervalSince1970: created))
        }
    }
}
