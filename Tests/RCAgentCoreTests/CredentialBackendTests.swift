import Foundation
import Testing

@testable import RCAgentCore
@testable import RCAgentLive
import RCAgentTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Backends: the config keys, which backend a profile gets, the router's per-profile answers,
/// the real file and environment sources, and the socket search's /run/user rule.
@Suite struct CredentialBackendTests {
    let dir: String

    init() throws {
        dir = NSTemporaryDirectory() + "rc-backend-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    @Test func configReadsBackendClientIDAndSecretFile() throws {
        let config = try ConfigFile.parse(
            """
            [profiles.server]
            url = "https://acme.logicgate.com"
            backend = "file"
            client_id = "abc"
            client_secret_file = "/run/secrets/rc"

            [profiles.ssh]
            backend = "keyctl"
            """, path: "c")
        #expect(config.profiles["server"]?.backend == .file)
        #expect(config.profiles["server"]?.clientID == "abc")
        #expect(config.profiles["server"]?.clientSecretFile == "/run/secrets/rc")
        #expect(config.profiles["ssh"]?.backend == .keyctl)
        #expect(config.warnings.isEmpty)
        #expect(throws: ConfigError.self) { try ConfigFile.parse("[profiles.a]\nbackend = \"plaintext\"\n", path: "c") }
        #expect(throws: ConfigError.self) { try ConfigFile.parse("[profiles.a]\nclient_secret_file = \"rel\"\n", path: "c") }
    }

    @Test func loginWritesTheBackendNextToTheURL() throws {
        let path = dir + "/config.toml"
        try "[profiles.default]\nurl = \"https://old.logicgate.com\"\n# kept\n".write(toFile: path, atomically: true, encoding: .utf8)
        try ConfigWriter(path: path).prepare(profile: "default", url: "https://a.logicgate.com", backend: .keyctl).commit()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("# kept"))
        let config = try ConfigFile.load(path: path)
        #expect(config.profiles["default"]?.backend == .keyctl)
        #expect(config.profiles["default"]?.url == "https://a.logicgate.com")
        try ConfigWriter(path: path).prepare(profile: "default", url: "https://a.logicgate.com").commit()
        #expect(try ConfigFile.load(path: path).profiles["default"]?.backend == .keyctl, "a login without --backend keeps it")
    }

    @Test func whichBackendAProfileGets() throws {
        var config = ConfigFile()
        config.profiles["k"] = ProfileConfig(backend: .keyctl)
        config.profiles["f"] = ProfileConfig(clientSecretFile: "/run/secrets/rc")
        let none: [String: String] = [:]
        #expect(CredentialBackend.of(profile: "default", config: config, environment: none, selectedProfile: "default") == .secretService)
        #expect(CredentialBackend.of(profile: "k", config: config, environment: none, selectedProfile: "default") == .keyctl)
        #expect(CredentialBackend.of(profile: "f", config: config, environment: none, selectedProfile: "default") == .file)
        let ci = ["RC_CLIENT_ID": "id", "RC_CLIENT_SECRET": "s"]
        #expect(CredentialBackend.of(profile: "k", config: config, environment: ci, selectedProfile: "k") == .env)
        #expect(CredentialBackend.of(profile: "k", config: config, environment: ci, selectedProfile: "default") == .keyctl,
            "the variables are for the selected profile only")
        #expect(CredentialBackend.secretFile(profile: "p", config: ConfigFile(), environment: ["CREDENTIALS_DIRECTORY": "/run/credentials/x"])
            == "/run/credentials/x/rc-agent.p")
    }

    @Test func routerReportsEachProfileForItsOwnBackend() async throws {
        var config = ConfigFile()
        config.profiles["desk"] = ProfileConfig(url: "https://a.logicgate.com")
        config.profiles["ssh"] = ProfileConfig(backend: .keyctl)
        let kernel = AgentMemoryStore([
            StoredCredential(profile: "ssh", clientID: "id", url: "https://a.logicgate.com", secret: Secret("s"), created: Date())
        ])
        let frozen = config
        let router = CredentialRouter(
            backends: [.secretService: LibSecretStore(timeout: 1, environment: [:]), .keyctl: kernel],
            config: { frozen }, environment: [:], selectedProfile: "desk")
        let states = await router.states(profiles: ["desk", "ssh"])
        #expect(states["desk"]?.keyring == .unavailable)
        #expect(states["desk"]?.error?.contains("rc-agent login --backend keyctl") == true)
        #expect(states["ssh"]?.keyring == .ok)
        #expect(states["ssh"]?.backend == .keyctl)
        #expect(try await router.load(profile: "ssh")?.clientID == "id")
        await #expect(throws: KeyringError.self) { try await router.load(profile: "desk") }
    }

    @Test func secretFileIsReadFreshAndItsOpennessIsAWarning() async throws {
        let path = dir + "/secret"
        FileManager.default.createFile(atPath: path, contents: Data("first\n".utf8), attributes: [.posixPermissions: 0o600])
        var config = ConfigFile()
        config.profiles["svc"] = ProfileConfig(url: "https://a.logicgate.com", clientID: "id", clientSecretFile: path)
        let frozen = config
        let source = SecretFileSource(environment: [:], config: { frozen })
        #expect(try await source.load(profile: "svc")?.secret == Secret("first"))
        let before = await source.fingerprint(profile: "svc")
        try Data("second\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try await source.load(profile: "svc")?.secret == Secret("second"))
        #expect(await source.fingerprint(profile: "svc") != before)
        #expect(await source.states(profiles: ["svc"])["svc"]?.warnings.isEmpty == true)
        chmod(path, 0o640)
        #expect(await source.states(profiles: ["svc"])["svc"]?.warnings.first?.contains("group or others") == true)
        await #expect(throws: ReadOnlyCredentialsError.self) { try await source.delete(profile: "svc") }
    }

    @Test func environmentHalfSetIsAnErrorNotSilence() async throws {
        let source = EnvironmentSource(environment: ["RC_CLIENT_SECRET": "s", "RC_AGENT_URL": "https://a.logicgate.com"], config: { ConfigFile() })
        await #expect(throws: CredentialSourceError.self) { try await source.load(profile: "default") }
        let whole = EnvironmentSource(
            environment: ["RC_CLIENT_ID": "id", "RC_CLIENT_SECRET": "s", "RC_AGENT_URL": "https://a.logicgate.com"],
            config: { ConfigFile() })
        #expect(try await whole.load(profile: "default")?.clientID == "id")
        #expect(await whole.states(profiles: ["default"])["default"]?.keyring == .ok)
    }

    @Test func environmentCredentialsTakeTheirTenantFromRCAgentURLNotFromAnotherProfilesConfig() async throws {
        var config = ConfigFile()
        config.profiles["prod"] = ProfileConfig(url: "https://prod.logicgate.com", backend: .keyctl)
        config.profiles["ci"] = ProfileConfig(url: "https://ci.logicgate.com", backend: .env)
        let frozen = config
        let variables = ["RC_CLIENT_ID": "id", "RC_CLIENT_SECRET": "s"]
        let source = EnvironmentSource(environment: variables, config: { frozen })
        await #expect {
            try await source.load(profile: "prod")
        } throws: { ($0 as? CredentialSourceError)?.message.contains("RC_AGENT_URL") == true }
        #expect(try await source.load(profile: "ci")?.url == "https://ci.logicgate.com",
            "a profile whose config says backend = env names the variables' tenant")
        let named = EnvironmentSource(environment: variables.merging(["RC_AGENT_URL": "https://ci.logicgate.com"]) { $1 }, config: { frozen })
        #expect(try await named.load(profile: "prod")?.url == "https://ci.logicgate.com")
    }

    @Test func secretFileTakesItsTenantOnlyFromTheConfig() async throws {
        let path = dir + "/secret"
        FileManager.default.createFile(atPath: path, contents: Data("s\n".utf8), attributes: [.posixPermissions: 0o600])
        var config = ConfigFile()
        config.profiles["svc"] = ProfileConfig(clientID: "id", clientSecretFile: path)
        let frozen = config
        let source = SecretFileSource(environment: ["RC_AGENT_URL": "https://elsewhere.logicgate.com"], config: { frozen })
        await #expect {
            try await source.load(profile: "svc")
        } throws: { ($0 as? CredentialSourceError)?.message.contains("no url") == true }
    }

    /// The agent's credentials follow the config file; when it stops parsing they stay on the
    /// last config that did, not on the one the agent started with.
    @Test func agentKeepsTheLastGoodConfigWhenTheFileStopsParsing() async throws {
        let (first, second, path) = (dir + "/first", dir + "/second", dir + "/config.toml")
        for (file, secret) in [(first, "one"), (second, "two")] {
            FileManager.default.createFile(atPath: file, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600])
        }
        func config(_ file: String) -> String {
            "[profiles.svc]\nurl = \"https://a.logicgate.com\"\nclient_id = \"id\"\nclient_secret_file = \"\(file)\"\n"
        }
        try config(first).write(toFile: path, atomically: true, encoding: .utf8)
        let runtime = LiveEnvironment(try Settings(configFlag: path, profileFlag: "svc", environment: [:])).agentRuntime()
        #expect(try await runtime.store.load(profile: "svc")?.secret == Secret("one"))
        try config(second).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await runtime.store.load(profile: "svc")?.secret == Secret("two"))
        try "[profiles.svc\nurl = ".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await runtime.store.load(profile: "svc")?.secret == Secret("two"), "fell back to the startup config")
        #expect(throws: ConfigError.self) { try runtime.loadConfig() }
        await runtime.connections.shutdown()
    }

    @Test func socketSearchUsesRunUserOnlyWhenItIsPrivateAndOurs() throws {
        let runUser = dir + "/run-user"
        let uid = getuid()
        try FileManager.default.createDirectory(atPath: runUser + "/\(uid)", withIntermediateDirectories: true)
        chmod(runUser + "/\(uid)", 0o700)
        let found = AgentSocket.path(flag: nil, environment: [:], uid: uid, runUser: runUser)
        #expect(found == runUser + "/\(uid)/rc-agent/agent.sock")
        #expect(AgentSocket.path(flag: nil, environment: ["XDG_RUNTIME_DIR": "/x"], uid: uid, runUser: runUser)
            == "/x/rc-agent/agent.sock")
        chmod(runUser + "/\(uid)", 0o755)
        #expect(AgentSocket.path(flag: nil, environment: [:], uid: uid, runUser: runUser) == "/tmp/rc-agent-\(uid)/agent.sock")
        chmod(runUser + "/\(uid)", 0o700)
        #expect(AgentSocket.path(flag: nil, environment: [:], uid: uid + 1, runUser: runUser) == "/tmp/rc-agent-\(uid + 1)/agent.sock")
    }
}
