import Synchronization

extension ConfigFile {
    /// Parses TOML `text`; `path` only names the file in errors.
    ///
    /// The agent reads its config on every credential lookup and status request, nearly always
    /// the same text; the last text's answer (the config or the error) is kept and given again, so
    /// a status request costs no parse and no allocations that could fragment the heap.
    public static func parse(_ text: String, path: String) throws -> ConfigFile {
        if let answer = lastParse.withLock({ $0?.text == text && $0?.path == path ? $0?.answer : nil }) {
            return try answer.get()
        }
        let answer = Result { try parseDocument(text, path: path) }
        lastParse.withLock { $0 = (text, path, answer) }
        return try answer.get()
    }

    private static let lastParse = Mutex<(text: String, path: String, answer: Result<ConfigFile, any Error>)?>(nil)
}
