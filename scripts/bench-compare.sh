#!/usr/bin/env bash
# Compares rc-agent builds with each other and with the bare SwiftNIO server (`rc-bench ceiling`)
# on cached `GET /v1/token`, interleaved in one run (the shared machine is noisy: only ratios
# within a round mean something). Prints each run and the median ratio to the ceiling per mode.
# Run inside scripts/with-keyring.sh:
#   scripts/with-keyring.sh scripts/bench-compare.sh AGENT_BINARY [AGENT_BINARY…]
# Knobs (environment): ROUNDS (3), SECONDS_EACH (3), MODES ("fresh:1 fresh:8 keep-alive:1
# keep-alive:8"), BENCH (rc-bench, release by default), STANDIN (rc-standin, debug by default),
# PERF_OUT (a path: `perf record -g` of the last agent under fresh ×8 goes there).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${RC_SANDBOX:-}" ] || { echo "run me through scripts/with-keyring.sh" >&2; exit 2; }
[ $# -ge 1 ] || { echo "usage: bench-compare.sh AGENT_BINARY [AGENT_BINARY…]" >&2; exit 2; }
bench=${BENCH:-${RELEASE_SCRATCH:-.build-release}/release/rc-bench}
standin=${STANDIN:-$(swift build --show-bin-path)/rc-standin}
agents=("$@")
rounds=${ROUNDS:-3} seconds=${SECONDS_EACH:-3} modes=${MODES:-"fresh:1 fresh:8 keep-alive:1 keep-alive:8"}
work="$RC_SANDBOX/compare"
mkdir -p "$work" && chmod 700 "$work"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true' EXIT

. scripts/bench-lib.sh
start_standin "$work" "${agents[0]}"
pids+=("$standin_pid")
export RC_AGENT_NO_AUTOSTART=1

# Agent i listens on a$i.sock; the ceiling on nio.sock, answering a constant as long as the token answer.
targets=()
for i in "${!agents[@]}"; do
    echo "a$i=${agents[$i]}"
    "${agents[$i]}" daemon --socket "$work/a$i.sock" 2>"$work/agent$i.log" &
    pids+=($!)
    wait_for_agent "$work/a$i.sock"
    curl -sf --unix-socket "$work/a$i.sock" http://localhost/v1/token -o /dev/null # cached from now on
    targets+=("a$i")
done
agent_pid=${pids[-1]}
body_bytes=$(curl -sf --unix-socket "$work/a0.sock" http://localhost/v1/token | wc -c)
start_ceiling "$work/nio.sock" "$body_bytes"
pids+=("$nio_pid")
targets+=(nio)

run() { # target mode connections seconds [round]
    "$bench" raw --socket "$work/$1.sock" --wire http --path /v1/token --connecting "$2" --connections "$3" \
        --seconds "$4" --label "$1" --tag "round=${5:-0} mode=$2 c=$3"
}
for t in "${targets[@]}"; do run "$t" fresh 8 1 >/dev/null; done # warm-up
n=${#targets[@]}
for round in $(seq 1 "$rounds"); do
    for mode_connections in $modes; do
        # Within a mode the targets take turns in an order that rotates with the round.
        for i in $(seq 0 $((n - 1))); do
            run "${targets[$(((i + round) % n))]}" "${mode_connections%:*}" "${mode_connections#*:}" "$seconds" "$round"
        done
    done
done | tee "$work/results"
if [ -n "${PERF_OUT:-}" ]; then
    run "a$((${#agents[@]} - 1))" fresh 8 7 >/dev/null &
    load=$!
    perf record -q -F 999 -g -o "$PERF_OUT" -p "$agent_pid" -- sleep 5 >/dev/null 2>&1 || true
    wait "$load" || true
fi
python3 - "$work/results" <<'PY'
import collections, re, statistics, sys
rounds = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) round=(\d+) mode=(\S+) c=(\d+) .* ok=(\d+) .* seconds=([\d.]+)", line)
    if m:
        target, rnd, mode, c, ok, secs = m.groups()
        rounds[(mode, int(c), rnd)][target] = int(ok) / float(secs)
ratios, rates = collections.defaultdict(list), collections.defaultdict(list)
for (mode, c, _), by_target in rounds.items():
    for target, rate in by_target.items():
        ratios[(mode, c, target)].append(rate / by_target["nio"])
        rates[(mode, c, target)].append(rate)
print("median over rounds: req/s, ÷ bare NIO (per round, then the median)")
for key in sorted(ratios):
    print(f"{key[0]} x{key[1]} {key[2]}: {statistics.median(rates[key]):.0f} req/s, "
          f"{statistics.median(ratios[key]):.2f}x")
PY
