import Foundation
@testable import RCAgentClient
import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport
import Testing

@Suite struct BasicAuthTests {
    @Test func knownVectors() {
        #expect(BasicAuth.encode("id:secret") == "aWQ6c2VjcmV0")
        #expect(BasicAuth.encode("Aladdin:open sesame") == "QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        #expect(BasicAuth.encode("") == "")
        #expect(BasicAuth.encode("a") == "YQ==")
        // UTF-8, not Latin-1: "é" is C3 A9.
        #expect(BasicAuth.encode("id:pässwörd") == "aWQ6cMOkc3N3w7ZyZA==")
        #expect(BasicAuth.encode("клиент:секрет€") == "0LrQu9C40LXQvdGCOtGB0LXQutGA0LXRguKCrA==")
        // Standard alphabet (+ and /), not URL-safe.
        #expect(BasicAuth.encode("\u{FB}\u{FF}") == "w7vDvw==")
        #expect(BasicAuth.encode("???") == "Pz8/")
        #expect(BasicAuth.encode("~~~") == "fn5+")
    }

    @Test func headerEncodesTheJoinedStringOnce() {
        let header = BasicAuth.header(clientID: "id", secret: Secret("secret"))
        #expect(header.reveal() == "Basic aWQ6c2VjcmV0")
        // Encoding each part separately is the classic 401 mistake: make sure we do not.
        #expect(header.reveal() != "Basic " + BasicAuth.encode("id") + ":" + BasicAuth.encode("secret"))
        #expect(!"\(header)".contains("aWQ6"))
    }

    @Test func longInputHasNoLineBreaks() {
        let long = String(repeating: "x", count: 500) + ":" + String(repeating: "ÿ", count: 300)
        let encoded = BasicAuth.encode(long)
        #expect(encoded.count > 76)
        #expect(!encoded.contains("\n") && !encoded.contains("\r"))
        #expect(Data(base64Encoded: encoded).map { String(decoding: $0, as: UTF8.self) } == long)
    }

    @Test func normaliseTrimsCopyPasteAccidentsWithNotes() throws {
        let clean = try CredentialInput.normalise(clientID: "client", secret: Secret("s3cret"))
        #expect(clean.clientID == "client" && clean.secret.reveal() == "s3cret" && clean.notes.isEmpty)

        let pasted = try CredentialInput.normalise(clientID: " client\n", secret: Secret("s3cret \n"))
        #expect(pasted.clientID == "client")
        #expect(pasted.secret.reveal() == "s3cret")
        #expect(pasted.notes.count == 2)
        #expect(pasted.notes.allSatisfy { !$0.contains("s3cret") })
    }

    @Test(arguments: ["a:b", "", "bad\u{7}id", "tab\tid"])
    func badClientIDsAreRejected(_ id: String) {
        #expect(throws: UsageError.self) { try CredentialInput.validateClientID(id) }
        #expect(throws: UsageError.self) { try CredentialInput.normalise(clientID: id, secret: Secret("s")) }
    }

    @Test func badSecretsAreRejectedWithoutEchoingThem() throws {
        for secret in ["", "  \n", "two\nlines"] {
            let error = #expect(throws: UsageError.self) {
                try CredentialInput.normalise(clientID: "id", secret: Secret(secret))
            }
            if !secret.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                #expect(!(error?.description.contains("lines") ?? true))
            }
        }
    }
}
