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

    @Test func aConfigOverOneMiBIsRefusedUnparsed() throws {
        let path = try write("# " + String(repeating: "x", count: ConfigFile.maximumBytes) + "\n")
        let error = try #require(throws: ConfigError.self) { try ConfigFile.load(path: path) }
        #expect(error.message.contains("larger than 1 MiB"), "\(error.message)")
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

    /// The old fixed temp name (`.config.toml.PID.tmp`), planted as a symlink to another file:
    /// the write never opens it (a unique `O_EXCL` name), and the planted link and its target
    /// stay as they were.
    @Test func aPlantedTempFileIsNeverOpened() throws {
        let path = try write("[profiles.default]\nurl = \"https://a.logicgate.com\"\n")
        let victim = try write("untouched\n", to: "victim")
        #expect(symlink(victim, dir + "/.config.toml.\(getpid()).tmp") == 0)
        let prepared = try ConfigWriter(path: path).prepare(profile: "default", url: "https://b.logicgate.com")
        try prepared.commit()
        #expect(try ConfigFile.load(path: path).profiles["default"]?.url == "https://b.logicgate.com")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "untouched\n")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(names == [".config.toml.\(getpid()).tmp", "config.toml", "victim"])
    }

    /// The staged file is 0600 whatever the umask.
    @Test func theStagedFileIsPrivateUnderAnOpenUmask() throws {
        let previous = umask(0)
        defer { umask(previous) }
        let path = dir + "/config.toml"
        let prepared = try ConfigWriter(path: path).prepare(profile: "default", url: "https://a.logicgate.com")
        #expect(try mode(of: prepared.tempPath) == 0o600)
        #expect((prepared.tempPath as NSString).lastPathComponent.hasPrefix(".config.toml."))
        try prepared.commit()
        #expect(try mode(of: path) == 0o600)
    }

    /// A dotfiles-style symlinked config: the file it points to is rewritten, the link stays.
    @Test func aSymlinkedConfigIsFollowedAndTheLinkKept() throws {
        try FileManager.default.createDirectory(atPath: dir + "/dotfiles", withIntermediateDirectories: true)
        let real = try write("# mine\n[profiles.default]\nurl = \"https://a.logicgate.com\"\n", to: "dotfiles/rc.toml")
        let link = dir + "/config.toml"
        #expect(symlink("dotfiles/rc.toml", link) == 0)
        try ConfigWriter(path: link).prepare(profile: "default", url: "https://b.logicgate.com").commit()
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "dotfiles/rc.toml")
        let text = try String(contentsOfFile: real, encoding: .utf8)
        #expect(text.contains("# mine") && text.contains("https://b.logicgate.com"), "\(text)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/dotfiles") == ["rc.toml"])
    }

    @Test func aSymlinkToNothingIsRefusedWithTheReason() throws {
        let link = dir + "/config.toml"
        #expect(symlink(dir + "/missing/rc.toml", link) == 0)
        let error = #expect(throws: ConfigError.self) {
            try ConfigWriter(path: link).prepare(profile: "default", url: "https://b.logicgate.com")
        }
        #expect(error?.message.contains("symbolic link to \(dir)/missing/rc.toml, which does not exist") == true, "\(String(describing: error))")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == dir + "/missing/rc.toml")
    }

    @Test(.enabled(if: getuid() == 0, "needs root to give a file to another user"))
    func anotherUsersConfigIsNotRewritten() throws {
        let path = try write("[profiles.default]\nurl = \"https://a.logicgate.com\"\n")
        #expect(chown(path, 65534, 65534) == 0)
        let error = #expect(throws: ConfigError.self) {
            try ConfigWriter(path: path).prepare(profile: "default", url: "https://b.logicgate.com")
        }
        #expect(error?.message.contains("owned by uid 65534") == true, "\(String(describing: error))")
    }

    @Test func aConfigOthersCanWriteIsAWarning() throws {
        let path = try write("[profiles.default]\nurl = \"https://a.logicgate.com\"\n")
        #expect(chmod(path, 0o600) == 0)
        #expect(try ConfigFile.load(path: path).warnings.isEmpty)
        #expect(chmod(path, 0o620) == 0)
        let warnings = try ConfigFile.load(path: path).warnings
        #expect(warnings.count == 1 && warnings.first?.contains("writable by its group (mode 620)") == true, "\(warnings)")
        #expect(chmod(path, 0o666) == 0)
        #expect(try ConfigFile.load(path: path).warnings.first?.contains("writable by everyone") == true)
    }
}
