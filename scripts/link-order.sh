#!/usr/bin/env bash
# Regenerates packaging/link-order.txt: the functions the agent runs while it starts and serves
# tokens (keep-alive, fresh connections, a burst, bad input), and the ones `rc-agent
# token`, `status` and `exec` run, recorded with valgrind's callgrind from the release binary.
# `make release` links those functions first (lld --symbol-ordering-file): the code a running
# agent touches then lies together in a few megabytes instead of spread over all of the text, so
# the kernel maps fewer pages of it (its resident memory) and a short-lived `rc-agent token`
# faults in fewer. A name the code no longer has is skipped by the linker; a function missing
# from the list still works, it only lies elsewhere. Re-run after large changes:
#   make release && scripts/with-keyring.sh scripts/link-order.sh && make release
# Needs valgrind (a tool for this script only; the build does not).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${RC_SANDBOX:-}" ] || { echo "run me through scripts/with-keyring.sh" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "link-order.sh needs valgrind (apt-get install valgrind)" >&2; exit 2; }

scratch=${RELEASE_SCRATCH:-.build-release}
out=${LINK_ORDER_OUT:-packaging/link-order.txt}
debug_bin=$(swift build --show-bin-path)
standin="$debug_bin/rc-standin"
bench="$scratch/release/rc-bench"
for tool in "$scratch/release/rc-agent" "$bench" "$standin"; do
    [ -x "$tool" ] || { echo "missing $tool (make release, swift build --product rc-bench and rc-standin)" >&2; exit 2; }
done
work="$RC_SANDBOX/link-order"
mkdir -p "$work" && chmod 700 "$work"
# valgrind 3.19 cannot read the release binary's DWARF; the symbol table is all it needs.
agent="$work/rc-agent"
strip --strip-debug -o "$agent" "$scratch/release/rc-agent"
profile() { local name=$1; shift; valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/callgrind.$name" "$@"; }

. scripts/bench-lib.sh
standin_pid=""
agent_pid=""
trap 'kill $agent_pid $standin_pid 2>/dev/null; wait 2>/dev/null || true' EXIT
start_standin "$work" "$agent"
sock="$XDG_RUNTIME_DIR/rc-link-order/agent.sock"
mkdir -p "$(dirname "$sock")" && chmod 700 "$(dirname "$sock")"
export RC_AGENT_SOCK="$sock" RC_AGENT_NO_AUTOSTART=1

# Under valgrind /proc/self/exe is valgrind's own tool, so the agent cannot start its keyring
# helper: it takes the made-up client's credentials from its environment (the `env` backend).
RC_CLIENT_ID=bench-client RC_CLIENT_SECRET=$standin_secret RC_AGENT_URL=$tenant \
    valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/callgrind.daemon" \
    --dump-before="*16ServedTokenAuditC5flush3now*" "$agent" daemon --socket "$sock" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 1 600); do curl -sf --unix-socket "$sock" http://localhost/healthz >/dev/null 2>&1 && break; sleep 0.1; done
for target in /v1/token '/v1/token?min_valid=60' '/v1/token?format=text' /healthz /v1/status /nope; do
    curl -s --unix-socket "$sock" "http://localhost$target" >/dev/null
done
curl -s -H 'Accept: text/plain' --unix-socket "$sock" http://localhost/v1/token >/dev/null
"$bench" raw --socket "$sock" --connections 8 --requests 4000 --seconds 60 >/dev/null
"$bench" raw --socket "$sock" --connections 1 --accept text/plain --requests 1000 --seconds 60 >/dev/null
"$bench" raw --socket "$sock" --connecting fresh --connections 8 --requests 2000 --seconds 60 >/dev/null
"$bench" burst --socket "$sock" --concurrent 100 >/dev/null
"$bench" bad-input --socket "$sock" --count 2000 --slowloris 2 --slowloris-seconds 1 >/dev/null
profile token "$agent" token >/dev/null
# The agent lists the keyring through its helper, which cannot run under valgrind: an error here.
profile status "$agent" status >/dev/null || true
profile exec "$agent" exec -- true
# The agent's profile is dumped when a stop flushes the audit (and so is the one of its first
# 60 s if that takes longer): under valgrind the rest of a stop can take minutes.
dumps() { find "$work" -name 'callgrind.daemon.*' | wc -l; }
before=$(dumps)
kill -TERM "$agent_pid"
for _ in $(seq 1 600); do [ "$(dumps)" -gt "$before" ] && break; sleep 0.1; done
sleep 1
kill -KILL "$agent_pid" 2>/dev/null || true
wait "$agent_pid" 2>/dev/null || true
agent_pid=""

# Callgrind names each function once as `fn=(ID) NAME` (or `cfn=`); the clients' first, then the
# agent's, each in the order callgrind met them; only names the binary defines as code.
python3 - "$agent" "$out" "$work"/callgrind.{token,status,exec} "$work"/callgrind.daemon* <<'PY'
import re, subprocess, sys
binary, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
symbols = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
code = {f[2] for f in (line.split() for line in symbols.splitlines()) if len(f) == 3 and f[1] in "tTwW"}
names, seen = [], set()
for path in files:
    for line in open(path, errors="replace"):
        match = re.match(r"^c?fn=\(\d+\) (.+)$", line)
        if match and (name := match.group(1).strip()) in code and name not in seen:
            seen.add(name)
            names.append(name)
with open(out, "w") as f:
    f.write("\n".join(names) + "\n")
print(f"{out}: {len(names)} functions")
PY
