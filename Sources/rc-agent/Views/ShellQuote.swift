import ArgumentParser
import FoundationEssentials

/// Quoting for lines a shell evaluates (`eval "$(rc-agent start)"`).
enum ShellQuote {
    /// Characters no shell treats specially: a word of only these needs no quotes.
    private static let safe = Set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+:@%,=".unicodeScalars)

    /// `text` as one POSIX shell word: unchanged when it holds only safe characters, else single-quoted.
    static func quote(_ text: String) -> String {
        quote(text, for: .sh)
    }

    /// `text` as one word of `syntax`'s shell.
    static func quote(_ text: String, for syntax: ShellSyntax) -> String {
        if !text.isEmpty, text.unicodeScalars.allSatisfy({ safe.contains($0) }) { return text }
        switch syntax {
        case .sh:
            return "'" + text.replacing("'", with: "'\\''") + "'"
        case .csh:
            // csh expands `!` (history) even inside single quotes; a backslash stops it there.
            return "'" + text.replacing("'", with: "'\\''").replacing("!", with: "\\!") + "'"
        case .fish:
            // In fish single quotes, `\\` and `\'` are the only escapes.
            return "'" + text.replacing("\\", with: "\\\\").replacing("'", with: "\\'") + "'"
        }
    }
}

/// The shell whose syntax `start` and `stop` print, like `ssh-agent -s`/`-c`.
enum ShellSyntax: String, EnumerableFlag {
    case sh, csh, fish

    static func name(for value: ShellSyntax) -> NameSpecification {
        switch value {
        case .sh: [.customShort("s"), .customLong("sh")]
        case .csh: [.customShort("c"), .customLong("csh")]
        case .fish: [.customLong("fish")]
        }
    }

    static func help(for value: ShellSyntax) -> ArgumentHelp? {
        switch value {
        case .sh: "Print Bourne shell commands (sh, bash, zsh)."
        case .csh: "Print C shell commands (csh, tcsh)."
        case .fish: "Print fish commands."
        }
    }

    /// The syntax for the login shell `$SHELL`, as ssh-agent chooses: a name ending in `csh` is a
    /// C shell; `fish` is fish; anything else (or none) gets Bourne shell syntax.
    static func of(loginShell: String?) -> ShellSyntax {
        let name = (loginShell ?? "").split(separator: "/").last.map(String.init) ?? ""
        if name.hasSuffix("csh") { return .csh }
        if name == "fish" { return .fish }
        return .sh
    }

    /// The line that exports `name=value`.
    func export(_ name: String, _ value: String) -> String {
        let word = ShellQuote.quote(value, for: self)
        switch self {
        case .sh: return "\(name)=\(word); export \(name);\n"
        case .csh: return "setenv \(name) \(word);\n"
        case .fish: return "set -gx \(name) \(word);\n"
        }
    }

    /// The line that removes `name` from the environment.
    func unset(_ name: String) -> String {
        switch self {
        case .sh: return "unset \(name);\n"
        case .csh: return "unsetenv \(name);\n"
        case .fish: return "set -e \(name);\n"
        }
    }
}

/// `-s`/`--sh`, `-c`/`--csh`, `--fish` of `start` and `stop`; none: chosen from `$SHELL`.
struct ShellSyntaxOption: ParsableArguments {
    @Flag var shell: ShellSyntax?

    /// The flag's syntax, else the one `$SHELL` calls for.
    var syntax: ShellSyntax {
        shell ?? ShellSyntax.of(loginShell: ProcessInfo.processInfo.environment["SHELL"])
    }
}
