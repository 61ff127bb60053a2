import RCAgentTestSupport
import Testing

/// The suites of issue 12's hardening (socket trust, tenant binding, TLS, proxy capacity), one
/// test at a time: each starts agents and stand-ins and uses the keyring, and the suite's other
/// suites run beside them.
@Suite(.serialized, .enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
enum HardeningTests {}
