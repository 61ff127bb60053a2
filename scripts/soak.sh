#!/usr/bin/env bash
# `make soak` (and, with SHORT=1, the ReliabilityTests suite in `make test`): the reliability
# suite of issue 7. Runs inside scripts/with-keyring.sh — it kills and restarts that sandbox's
# gnome-keyring, so never point it at a session whose keyring matters. Loopback only; bounded in
# count and time; stops by itself. One summary line per part (PASS/FAIL name: details); the last
# line is `N passed, N failed`. Details and every capture are under $RC_SANDBOX/soak/logs.
#
#   SHORT=1          small counts (about a minute)
#   RC_BIN_DIR=DIR   where rc-agent, rc-standin and rc-bench are (default: swift build --show-bin-path)
set -uo pipefail
cd "$(dirname "$0")/.."
[ -n "${RC_SANDBOX:-}" ] || { echo "run me through scripts/with-keyring.sh" >&2; exit 2; }
short=${SHORT:-0}
bin=${RC_BIN_DIR:-$(swift build --show-bin-path)}
agent="$bin/rc-agent" standin="$bin/rc-standin" bench="$bin/rc-bench"
# The load part must outlast its token's lifetime (it checks refreshes under load): cached
# answers run at several thousand a second even in a debug build.
if [ "$short" = 1 ]; then
    bad_count=2000 slowloris=8 load_clients=200 load_each=100 lifetime=2 fault_lifetime=4 kinds="status500 retry_after close garbage down"
else
    bad_count=100000 slowloris=64 load_clients=200 load_each=1000 lifetime=5 fault_lifetime=6 kinds="status500 retry_after close garbage hang down"
fi

work="$RC_SANDBOX/soak"
logs="$work/logs"              # every capture: scanned for secrets at the end
private="$RC_SANDBOX/soak-private" # the scan's own lists (secret, tokens): never scanned
mkdir -p "$logs" "$private" && chmod 700 "$work" "$private"
sock="$XDG_RUNTIME_DIR/rc-soak/agent.sock"
mkdir -p "$(dirname "$sock")" && chmod 700 "$(dirname "$sock")"
export RC_AGENT_SOCK="$sock" RC_AGENT_NO_AUTOSTART=1 RC_AGENT_KEYRING_TIMEOUT=5
ulimit -n 8192 2>/dev/null || true

passed=0 failed=0
report() { # NAME OK(1/0) DETAILS
    if [ "$2" = 1 ]; then passed=$((passed + 1)); echo "PASS $1: $3"; else failed=$((failed + 1)); echo "FAIL $1: $3"; fi
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
json() { python3 -c "import json,sys
d=json.loads(sys.stdin.read() or '{}')
for k in sys.argv[1].split('.'):
    d=d.get(k) if isinstance(d,dict) else None
print('' if d is None else d)" "$1"; }

# --- the stand-in (a made-up client; the secret goes in through stdin only) ---
secret="soak-secret-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$secret" >"$private/patterns"
standin_pid="" port=0 standin_runs=0
start_standin() {
    standin_runs=$((standin_runs + 1))
    printf 'soak-client:%s\n' "$secret" | "$standin" --port "$port" --clients-file - \
        >"$logs/standin-$standin_runs.out" 2>"$logs/standin-$standin_runs.err" &
    standin_pid=$!
    for _ in $(seq 1 200); do grep -q '^port=' "$logs/standin-$standin_runs.out" 2>/dev/null && break; sleep 0.05; done
    port=$(sed -n 's/^port=//p' "$logs/standin-$standin_runs.out")
    tenant="http://127.0.0.1:$port"
}
stop_standin() { # keeps the tokens it minted for the leak scan
    curl -sf "$tenant/_standin/tokens" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["tokens"]))' \
        >>"$private/patterns" 2>/dev/null
    kill "$standin_pid" 2>/dev/null; wait "$standin_pid" 2>/dev/null
}
control() { curl -sf -X POST "$tenant/_standin/$1" -d "${2:-{\}}" >/dev/null; }
counter() { curl -sf "$tenant/_standin/counters" | json token_requests; }

# --- the agent ---
agent_pid="" agent_runs=0
start_agent() {
    agent_runs=$((agent_runs + 1))
    "$agent" daemon --socket "$sock" 2>"$logs/agent-$agent_runs.log" &
    agent_pid=$!
    for _ in $(seq 1 400); do curl -sf --unix-socket "$sock" http://localhost/healthz >/dev/null 2>&1 && return 0; sleep 0.025; done
    return 1
}
keep_proc() { # the agent's argv and environment, for the leak scan at the end
    # The agent is non-dumpable: only root (CAP_SYS_PTRACE) can read its environ. An empty
    # capture fails the scan below instead of passing it.
    cat "/proc/$agent_pid/cmdline" >"$private/cmdline-$agent_runs" 2>/dev/null
    cat "/proc/$agent_pid/environ" >"$private/environ-$agent_runs" 2>/dev/null
}
# GET (or METHOD) TARGET on the socket → "STATUS BODY" in $reply_status / $reply_body.
ask() {
    local method=GET target=$1 max=${2:-70}
    [ "$#" -ge 3 ] && method=$3
    local raw
    raw=$(curl -sS --max-time "$max" -X "$method" --unix-socket "$sock" -w '\n%{http_code}' "http://localhost$target" 2>>"$logs/curl.err")
    reply_status=${raw##*$'\n'}
    reply_body=${raw%$'\n'*}
}
token_of() { json access_token <<<"$reply_body"; }
code_of() { json error.code <<<"$reply_body"; }
cleanup() {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
    [ -n "$standin_pid" ] && kill "$standin_pid" 2>/dev/null
    wait 2>/dev/null
}
trap cleanup EXIT

start_standin
printf '%s\n' "$secret" | "$agent" login --url "$tenant" --client-id soak-client --client-secret-stdin \
    >"$logs/login.out" 2>"$logs/login.err" || echo "login failed: see $logs/login.err" >&2
start_agent || echo "the agent did not start: see $logs/agent-1.log" >&2

# --- 1. bad input while a good client fetches tokens ---
line=$("$bench" bad-input --socket "$sock" --count "$bad_count" --slowloris "$slowloris" --slowloris-seconds 12 \
    --pid "$agent_pid" --threads 2 2>>"$logs/bench.err")
echo "$line" >>"$logs/parts.log"
alive=0; kill -0 "$agent_pid" 2>/dev/null && alive=1
rss_start=$(field rss_start_kb "$line") rss_max=$(field rss_max_kb "$line") rss_end=$(field rss_end_kb "$line")
ok=0
[ "$alive" = 1 ] && [ "$(field good_failed "$line")" = 0 ] && [ "${rss_max:-0}" -gt 0 ] && [ "$(field good_ok "$line")" -gt 0 ] &&
    [ "$(field internal_errors "$line")" = 0 ] && [ "$(field slowloris_closed_by_agent "$line")" = "$slowloris" ] &&
    [ $((rss_max - rss_start)) -le 32768 ] && ok=1
report bad-input $ok "$bad_count generated requests ($(field seconds "$line") s), answers $(field statuses "$line") (0 = none before close), agent alive=$alive, slowloris $(field slowloris_closed_by_agent "$line")/$slowloris closed by the agent, good client $(field good_ok "$line") ok / $(field good_failed "$line") failed, RSS ${rss_start} → max ${rss_max} → ${rss_end} kB"

# --- 2. load with refreshes under it ---
control config "{\"token_lifetime\":$lifetime,\"reuse_live_token\":false}"
ask /v1/token 10 DELETE
before=$(counter)
line=$("$bench" load --socket "$sock" --connections "$load_clients" --requests $((load_clients * load_each)) \
    --path "/v1/token?min_valid=1" --threads 2 --tokens-out "$private/served-tokens" 2>>"$logs/bench.err")
echo "$line" >>"$logs/parts.log"
calls=$(($(counter) - before))
distinct=$(sort -u "$private/served-tokens" 2>/dev/null | wc -l)
ok=0
[ "$(field errors "$line")" = 0 ] && [ "$(field requests "$line")" = $((load_clients * load_each)) ] && [ "$calls" -ge 2 ] && ok=1
report load $ok "$load_clients clients × $load_each requests: $(field requests "$line") requests, $(field errors "$line") errors, $(field rps "$line") req/s, p99 $(field p99_us "$line") µs, token lifetime ${lifetime} s → $calls upstream token calls, $distinct distinct tokens served"
cat "$private/served-tokens" >>"$private/patterns" 2>/dev/null

# --- 3. tenant faults: cached token served until expiry, then the right error, then recovery ---
control config "{\"token_lifetime\":$fault_lifetime,\"reuse_live_token\":false}"
fault_ok=1 fault_notes=()
for kind in $kinds; do
    control clear-failures
    ask /v1/token 10 DELETE
    ask "/v1/token?min_valid=1"
    first=$(token_of)
    issued=$(date +%s.%N)
    case $kind in
    status500) control fail '{"kind":"status","status":500,"body":"boom"}'; want=tenant_unreachable ;;
    retry_after) control fail '{"kind":"retry_after","seconds":2}'; want=rate_limited ;;
    close) control fail '{"kind":"close"}'; want=tenant_unreachable ;;
    garbage) control fail '{"kind":"garbage"}'; want=unexpected_response ;;
    hang) control fail '{"kind":"hang"}'; want=tenant_timeout ;;
    down) stop_standin; want=tenant_unreachable ;;
    esac
    # Ask for more than the token has: the agent tries the tenant (which fails) and serves what it has.
    ask "/v1/token?min_valid=3600" 3
    served_status=$reply_status served=$(token_of)
    ask "/v1/token?min_valid=1" 3
    cached_ok=0
    [ "$reply_status" = 200 ] && [ "$(token_of)" = "$first" ] && [ -n "$first" ] && cached_ok=1
    [ "$kind" != hang ] && { [ "$served_status" = 200 ] && [ "$served" = "$first" ] || cached_ok=0; }
    # After expiry: the diagnosis.
    sleep "$(python3 -c "import time; print(max(0.1, $issued + $fault_lifetime + 0.3 - time.time()))")"
    ask "/v1/token?min_valid=1" 75
    expired_status=$reply_status expired_code=$(code_of)
    # The tenant comes back: recovery without a restart.
    if [ "$kind" = down ]; then start_standin; else control clear-failures; fi
    t0=$(date +%s.%N) recovered=0
    for _ in $(seq 1 150); do
        ask "/v1/token?min_valid=1" 75
        [ "$reply_status" = 200 ] && { recovered=1; break; }
        sleep 0.5
    done
    took=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
    this=0
    [ "$cached_ok" = 1 ] && [ "$expired_code" = "$want" ] && [ "$recovered" = 1 ] && kill -0 "$agent_pid" 2>/dev/null && this=1
    [ "$this" = 1 ] || fault_ok=0
    fault_notes+=("$kind: cached=$([ $cached_ok = 1 ] && echo yes || echo NO) expired→$expired_status $expired_code$([ "$expired_code" = "$want" ] || echo " (want $want)") recovered=$([ $recovered = 1 ] && echo "in ${took}s" || echo NO)")
done
control clear-failures
report faults $fault_ok "$(IFS=';'; echo "${fault_notes[*]}" | sed 's/;/; /g') (token lifetime ${fault_lifetime} s, one agent process throughout: pid $agent_pid)"
control config '{"token_lifetime":3600}'

# --- 4. the keyring daemon killed and restarted while the agent runs ---
keyring_pid() {
    dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null | awk '/uint32/ {print $2}'
}
kpid=$(keyring_pid)
kill "$kpid" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$kpid" 2>/dev/null || break; sleep 0.05; done
ask /v1/token 10 DELETE # forget the token: the next one needs the keyring
ask "/v1/token?min_valid=1" 20
down_status=$reply_status down_code=$(code_of) down_hint=$(json error.hint <<<"$reply_body")
# D-Bus activation may have started a fresh, locked daemon: replace it with an unlocked one.
kpid=$(keyring_pid)
[ -n "$kpid" ] && kill "$kpid" 2>/dev/null && sleep 0.3
eval "$(printf '%s' "$RC_TEST_KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets 2>>"$logs/keyring.err")"
recovered=0
for _ in $(seq 1 60); do
    ask "/v1/token?min_valid=1" 20
    [ "$reply_status" = 200 ] && { recovered=1; break; }
    sleep 0.5
done
ok=0
[ "$down_status" = 503 ] && [[ "$down_code" == keyring_* ]] && [ "$recovered" = 1 ] && kill -0 "$agent_pid" 2>/dev/null && ok=1
report keyring $ok "daemon killed → $down_status $down_code (hint: ${down_hint:-none}); restarted with gnome-keyring-daemon --unlock → $([ $recovered = 1 ] && echo "200 again, same agent pid $agent_pid" || echo "NOT recovered: last $reply_status $(code_of)")"

# --- 5. SIGKILL: the next start cleans the stale socket ---
keep_proc
kill -KILL "$agent_pid"; wait "$agent_pid" 2>/dev/null
stale=0; [ -S "$sock" ] && stale=1
started=0; start_agent && started=1
ask "/v1/token?min_valid=1" 20
ok=0; [ "$stale" = 1 ] && [ "$started" = 1 ] && [ "$reply_status" = 200 ] && ok=1
report sigkill $ok "agent SIGKILLed, socket left behind=$([ $stale = 1 ] && echo yes || echo no); a new agent started on the same path=$([ $started = 1 ] && echo yes || echo NO) and served a token ($reply_status)"

# --- 6. read-only and full config dir during login: an error, nothing half-written ---
ro_notes=() ro_ok=1
for fs in readonly full; do
    cfg="$work/cfg-$fs"
    mkdir -p "$cfg"
    profile="soak-$fs"
    if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
        how="tmpfs mounted $([ $fs = readonly ] && echo read-only || echo 'with 8 KiB, filled') in a private mount namespace"
        # shellcheck disable=SC2016
        printf '%s\n' "$secret" | XDG_CONFIG_HOME="$cfg" unshare -m bash -c '
            if [ "$1" = readonly ]; then mount -t tmpfs -o ro,size=64k tmpfs "$2"
            else mount -t tmpfs -o size=8k tmpfs "$2" && dd if=/dev/zero of="$2/filler" bs=1k count=64 2>/dev/null; fi
            "$3" login --profile "$4" --url "$5" --client-id soak-client --client-secret-stdin; s=$?
            ls -A "$2" | grep -v "^filler$" >&2; exit $s' _ "$fs" "$cfg" "$agent" "$profile" "$tenant" \
            >"$logs/login-$fs.out" 2>"$logs/login-$fs.err"
        status=$?
    else
        [ "$fs" = full ] && continue
        how="chmod 0500 (not root: no private mount)"
        chmod 500 "$cfg"
        printf '%s\n' "$secret" | XDG_CONFIG_HOME="$cfg" "$agent" login --profile "$profile" --url "$tenant" \
            --client-id soak-client --client-secret-stdin >"$logs/login-$fs.out" 2>"$logs/login-$fs.err"
        status=$?
        chmod 700 "$cfg"
    fi
    leftovers=$(ls -A "$cfg" | wc -l)
    item=$(secret-tool search --all service rc-agent profile "$profile" 2>/dev/null | grep -c '^attribute.profile')
    message=$(grep -v "^$" "$logs/login-$fs.err" | head -1 | cut -c1-160)
    this=0; [ "$status" != 0 ] && [ "$leftovers" = 0 ] && [ "$item" = 0 ] && this=1
    [ "$this" = 1 ] || ro_ok=0
    ro_notes+=("$fs ($how): exit $status, \"${message:-no message}\", files left $leftovers, keyring items $item")
done
ask "/v1/token?min_valid=1" 20
[ "$reply_status" = 200 ] || ro_ok=0
report config-dir $ro_ok "$(IFS=';'; echo "${ro_notes[*]}" | sed 's/;/; /g'); the working profile still serves ($reply_status)"

# --- 7. secrets: the test secret and every token issued, nowhere they must not be ---
keep_proc
stop_standin
standin_pid=""
sort -u "$private/patterns" | grep -v '^$' >"$private/patterns.sorted"
patterns=$(wc -l <"$private/patterns.sorted")
scan=("$logs" "$XDG_CONFIG_HOME" "$XDG_STATE_HOME" "$XDG_RUNTIME_DIR/rc-soak" "$work"/cfg-*)
hits=$(grep -rIlaF -f "$private/patterns.sorted" "${scan[@]}" 2>/dev/null | wc -l)
proc_hits=0 captures=0 empty_captures=0
for f in "$private"/cmdline-* "$private"/environ-*; do
    [ -e "$f" ] || continue
    captures=$((captures + 1))
    [ -s "$f" ] || empty_captures=$((empty_captures + 1))
    grep -qaF -f "$private/patterns.sorted" "$f" && proc_hits=$((proc_hits + 1))
done
files=$(find "${scan[@]}" -type f 2>/dev/null | wc -l)
ok=0
[ "$hits" = 0 ] && [ "$proc_hits" = 0 ] && [ "$patterns" -ge 2 ] && [ "$captures" -ge 2 ] \
    && [ "$empty_captures" = 0 ] && ok=1
unreadable=""
[ "$empty_captures" = 0 ] || unreadable=" — $empty_captures captures EMPTY (the agent is non-dumpable: run as root to read its environ)"
report secrets $ok "$patterns values (the client secret + every token the stand-in minted or the agent served) searched in $files files (logs, captures, config, state, runtime) and $agent_runs agents' /proc cmdline+environ ($captures captures): $hits file hits, $proc_hits /proc hits$unreadable"

kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null
agent_pid=""
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
