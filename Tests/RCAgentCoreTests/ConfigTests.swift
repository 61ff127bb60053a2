import Foundation
import Testing

@testable import RCAgentClient
@testable import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport

@Suite struct ConfigTests {
    let dir: String

    init() throws {
        dir = NSTemporaryDirectory() + "rc-config-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func write(_ text: String, to name: String = "config.toml") throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func parsesProfilesAndDefaults() throws {
        let config = try ConfigFile.parse(
            """
            [defaults]
            profile = "work"
            keyring_timeout = 5
            rotate_after_days = 60

            [profiles.work]
            url = "https://acme.logicgate.com"

            [profiles.other]
            url = "https://other.logicgate.com"
            rotate_after_days = 30
            """, path: "c.toml")
        #expect(config.defaultProfile == "work")
        #expect(config.keyringTimeout == 5)
        #expect(config.profiles["work"]?.url == "https://acme.logicgate.com")
        #expect(config.effective(profile: "work").rotateAfterDays == 60)
        #expect(config.effective(profile: "other").rotateAfterDays == 30)
        #expect(config.warnings.isEmpty)
    }

    @Test func unknownKeysWarnButDoNotFail() throws {
        let config = try ConfigFile.parse(
            """
            colour = "blue"
            [profiles.default]
            url = "https://acme.logicgate.com"
            favourite = 3
            """, path: "c.toml")
        #expect(config.profiles["default"]?.url == "https://acme.logicgate.com")
        #expect(config.warnings.count == 2)
        #expect(config.warnings.contains { $0.contains("'colour'") })
        #expect(config.warnings.contains { $0.contains("'profiles.default.favourite'") })
    }

    @Test func malformedFileNamesFileAndLine() throws {
        let path = try write("[profiles.default]\nurl = \"https://a.logicgate.com\"\nbroken = = 3\n")
        let error = try #require(throws: ConfigError.self) { try ConfigFile.load(path: path) }
        #expect(error.line == 3)
        #expect(error.message.hasPrefix(path + ":3"))
    }

    @Test func wrongTypeNamesFileLineAndKey() throws {
        let path = try write("[profiles.default]\n# the tenant\nurl = 42\n")
        let error = try #require(throws: ConfigError.self) { try ConfigFile.load(path: path) }
        #expect(error.key == "profiles.default.url")
        #expect(error.line == 3)
        #expect(error.message.contains("config.toml:3: 'profiles.default.url' must be a string"))
    }

    @Test func negativeDaysIsAnErrorNamingTheKey() throws {
        let error = try #require(throws: ConfigError.self) {
            try ConfigFile.parse("[defaults]\nremind_before_days = -1\n", path: "c.toml")
        }
        #expect(error.key == "defaults.remind_before_days")
    }

    @Test func proxyMaxBodyIsReadFromDefaultsAndChecked() throws {
        #expect(try ConfigFile.parse("[defaults]\nproxy_max_body = 1048576\n", path: "c.toml").proxyMaxBody == 1 << 20)
        #expect(try ConfigFile.parse("", path: "c.toml").proxyMaxBody == nil)
        for bad in ["0", "-5", "1.5", "\"64M\""] {
            let error = try #require(throws: ConfigError.self) {
                try ConfigFile.parse("[defaults]\nproxy_max_body = \(bad)\n", path: "c.toml")
            }
            #expect(error.key == "defaults.proxy_max_body", "\(bad)")
        }
    }

    @Test func invalidProfileNameInFileIsAnError() throws {
        #expect(throws: ConfigError.self) {
            try ConfigFile.parse("[profiles.\"has space\"]\nurl = \"https://a.logicgate.com\"\n", path: "c.toml")
        }
    }

    @Test func missingFileIsEmptyConfig() throws {
        let config = try ConfigFile.load(path: dir + "/absent.toml")
        #expect(config == ConfigFile())
    }

    @Test(arguments: ["default", "a", "work.eu-1_x", String(repeating: "p", count: 64)])
    func validProfileNames(_ name: String) {
        #expect(ProfileName.isValid(name))
    }

    @Test(arguments: ["", "has space", "a/b", "ü", String(repeating: "p", count: 65), "x;rm"])
    func invalidProfileNames(_ name: String) {
        #expect(!ProfileName.isValid(name))
    }

    // Precedence everywhere: flag > environment > config file > built-in default.
    @Test func configPathPrecedence() throws {
        let env = ["HOME": "/home/u", "XDG_CONFIG_HOME": "/xdg", "RC_AGENT_CONFIG": "/env.toml"]
        #expect(Settings.configPath(flag: "/flag.toml", environment: env) == "/flag.toml")
        #expect(Settings.configPath(flag: nil, environment: env) == "/env.toml")
        #expect(Settings.configPath(flag: nil, environment: ["HOME": "/home/u", "XDG_CONFIG_HOME": "/xdg"])
            == "/xdg/rc-agent/config.toml")
        #expect(Settings.configPath(flag: nil, environment: ["HOME": "/home/u"]) == "/home/u/.config/rc-agent/config.toml")
    }

    @Test func profilePrecedence() throws {
        let path = try write("[defaults]\nprofile = \"fromfile\"\n")
        let env = ["RC_AGENT_CONFIG": path, "RC_PROFILE": "fromenv", "HOME": dir]
        #expect(try Settings(configFlag: nil, profileFlag: "fromflag", environment: env).profile == "fromflag")
        #expect(try Settings(configFlag: nil, profileFlag: nil, environment: env).profile == "fromenv")
        var noEnv = env
        noEnv["RC_PROFILE"] = nil
        let fromFile = try Settings(configFlag: nil, profileFlag: nil, environment: noEnv)
        #expect(fromFile.profile == "fromfile")
        #expect(!fromFile.profileExplicit)
        #expect(try Settings(configFlag: dir + "/none.toml", profileFlag: nil, environment: noEnv).profile == "default")
        #expect(throws: UsageError.self) { try Settings(configFlag: nil, profileFlag: "bad name", environment: env) }
    }

    @Test func urlAndTimeoutPrecedence() throws {
        let path = try write("[defaults]\nkeyring_timeout = 7\n[profiles.default]\nurl = \"https://file.logicgate.com\"\n")
        let base = ["RC_AGENT_CONFIG": path, "HOME": dir]
        let withEnv = base.merging(["RC_AGENT_URL": "https://env.logicgate.com", "RC_AGENT_KEYRING_TIMEOUT": "3"]) { $1 }
        let s1 = try Settings(configFlag: nil, profileFlag: nil, environment: withEnv)
        #expect(try s1.tenantURL(profile: "default", flag: "flag.logicgate.com")?.base == "https://flag.logicgate.com")
        #expect(try s1.tenantURL(profile: "default")?.base == "https://env.logicgate.com")
        #expect(s1.keyringTimeout == 3)
        let s2 = try Settings(configFlag: nil, profileFlag: nil, environment: base)
        #expect(try s2.tenantURL(profile: "default", stored: "https://kr.logicgate.com")?.base == "https://file.logicgate.com")
        #expect(try s2.tenantURL(profile: "nofile", stored: "https://kr.logicgate.com")?.base == "https://kr.logicgate.com")
        #expect(try s2.tenantURL(profile: "nofile") == nil)
        #expect(s2.keyringTimeout == 7)
        let s3 = try Settings(configFlag: dir + "/none.toml", profileFlag: nil, environment: ["HOME": dir])
        #expect(s3.keyringTimeout == Settings.defaultKeyringTimeout)
    }

    @Test func writerKeepsCommentsAndOtherKeys() throws {
        let original = """
            # my settings
            [defaults]
            rotate_after_days = 30 # keep

            [profiles.default]
            url = "https://old.logicgate.com"
            custom = "kept"

            [profiles.other]
            url = "https://other.logicgate.com"
            """
        let updated = ConfigWriter.setting("url", to: "https://new.logicgate.com", profile: "default", in: original)
        #expect(updated.contains("# my settings"))
        #expect(updated.contains("rotate_after_days = 30 # keep"))
        #expect(updated.contains("custom = \"kept\""))
        let parsed = try ConfigFile.parse(updated, path: "c")
        #expect(parsed.profiles["default"]?.url == "https://new.logicgate.com")
        #expect(parsed.profiles["other"]?.url == "https://other.logicgate.com")

        let added = ConfigWriter.setting("url", to: "http://127.0.0.1:8080", profile: "third", in: original)
        #expect(try ConfigFile.parse(added, path: "c").profiles["third"]?.url == "http://127.0.0.1:8080")
        let fresh = ConfigWriter.setting("url", to: "https://a.logicgate.com", profile: "default", in: "")
        #expect(fresh == "[profiles.default]\nurl = \"https://a.logicgate.com\"\n")
    }

    @Test func preparedConfigIsPrivateAndAtomic() throws {
        let path = dir + "/sub/config.toml"
        let prepared = try ConfigWriter(path: path).prepare(profile: "default", url: "https://a.logicgate.com")
        #expect(!FileManager.default.fileExists(atPath: path))
        try prepared.commit()
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let dirAttributes = try FileManager.default.attributesOfItem(atPath: dir + "/sub")
        #expect((dirAttributes[.posixPermissions] as? Int) == 0o700)
        #expect(try ConfigFile.load(path: path).profiles["default"]?.url == "https://a.logicgate.com")

        let discarded = try ConfigWriter(path: path).prepare(profile: "default", url: "https://b.logicgate.com")
        discarded.discard()
        #expect(try ConfigFile.load(path: path).profiles["default"]?.url == "https://a.logicgate.com")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/sub") == ["config.toml"])
    }
}
