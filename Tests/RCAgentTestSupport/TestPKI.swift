import Foundation
import RiskCloudStandIn

/// Certificates for the stand-in's TLS mode, made at test time with the `openssl` CLI: a CA the
/// tests trust (through `ca_file`), another CA nobody trusts, and server certificates for each
/// TLS case rc-agent diagnoses.
package struct TestPKI: Sendable {
    /// Where the PEM files are.
    package let directory: String

    /// The CA a test puts in `ca_file`.
    package var caFile: String { directory + "/ca.pem" }
    /// A CA that signed only `unknownCA`.
    package var otherCAFile: String { directory + "/other-ca.pem" }

    /// A server certificate for `localhost` and 127.0.0.1.
    package enum Server: String, Sendable, CaseIterable {
        /// Issued by ``TestPKI/caFile``, valid now.
        case valid
        /// Issued by ``TestPKI/caFile`` for another host name.
        case wrongHost = "wrong-host"
        /// Issued by a CA no one trusts.
        case unknownCA = "unknown-ca"
        /// Issued by ``TestPKI/caFile``, expired in 2020.
        case expired
    }

    /// The stand-in's TLS mode with `server`'s certificate, on `https://localhost:PORT`.
    package func standIn(_ server: Server) -> StandInTLS {
        StandInTLS(
            certificateChainFile: directory + "/\(server.rawValue).pem", privateKeyFile: directory + "/\(server.rawValue).key")
    }

    /// Makes every certificate in a new directory under `parent`.
    package static func make(in parent: String) async throws -> TestPKI {
        let directory = parent + "/pki"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let result = try await runProcess(
            "/bin/sh", ["-c", script, "sh", directory], environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"])
        guard result.status == 0 else { throw PKIError(description: "openssl failed: \(result)") }
        return TestPKI(directory: directory)
    }

    struct PKIError: Error, CustomStringConvertible {
        let description: String
    }

    /// `sh -c SCRIPT sh DIRECTORY`: EC keys, two CAs, the server certificates (the expired one
    /// through `openssl ca`, the only way OpenSSL 3.0 sets a validity in the past).
    private static let script = #"""
set -e
cd "$1"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1.key" 2>/dev/null; }
ca() {
    key "$1"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 3 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
csr() { key "$1"; openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"; }
sign() { openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 3 -extfile "$3" -out "$1.pem" 2>/dev/null; }
ca ca "rc-agent test CA"
ca other-ca "another CA"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > good.ext
printf 'subjectAltName=DNS:wrong-host.example\nextendedKeyUsage=serverAuth\n' > wrong.ext
csr valid localhost && sign valid ca good.ext
csr wrong-host wrong-host.example && sign wrong-host ca wrong.ext
csr unknown-ca localhost && sign unknown-ca other-ca good.ext
csr expired localhost
: > index.txt
echo 01 > serial
printf '[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n' > ca.cnf
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
    -startdate 20200101000000Z -enddate 20200102000000Z -extfile good.ext -notext 2>/dev/null
"""#
}
