# The set-up scripts/bench.sh and scripts/bench-compare.sh share; sourced by both, which set
# `standin` (rc-stand-in) and `bench` (rc-bench) first.

# start_standin WORK AGENT: the stand-in on loopback with a made-up client, and AGENT logged in to
# it; the secret goes in through stdin only. Sets standin_pid, tenant and standin_secret (the
# made-up client's secret, for an agent that must take it from its environment).
start_standin() {
    local work=$1 agent=$2 secret port
    secret="bench-secret-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    standin_secret=$secret
    printf 'bench-client:%s\n' "$secret" | "$standin" --clients-file - >"$work/standin.out" 2>"$work/standin.err" &
    standin_pid=$!
    for _ in $(seq 1 200); do grep -q '^port=' "$work/standin.out" 2>/dev/null && break; sleep 0.05; done
    port=$(sed -n 's/^port=//p' "$work/standin.out")
    tenant="http://127.0.0.1:$port"
    printf '%s\n' "$secret" | "$agent" login --url "$tenant" --client-id bench-client --client-secret-stdin >"$work/login.out"
}

# wait_for_agent SOCKET: until the agent there answers GET /healthz (at most about 4 s).
wait_for_agent() {
    for _ in $(seq 1 200); do curl -sf --unix-socket "$1" http://localhost/healthz >/dev/null 2>&1 && return; sleep 0.02; done
}

# start_ceiling SOCKET BODY_BYTES: the bare SwiftNIO HTTP/1 server on one event loop, answering a
# constant of BODY_BYTES (as long as the token answer). Sets nio_pid.
start_ceiling() {
    "$bench" ceiling --socket "$1" --body-bytes "$2" >"${1%.sock}.out" &
    nio_pid=$!
    for _ in $(seq 1 200); do [ -S "$1" ] && break; sleep 0.02; done
}
