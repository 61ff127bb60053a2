#!/usr/bin/env bash
# `make bench`: measures the agent against its targets (issue 7) and writes docs/BENCHMARKS.md.
# Runs inside scripts/with-keyring.sh (private D-Bus + gnome-keyring + temporary HOME), against
# the local stand-in on 127.0.0.1. A benchmark, not a test: nothing passes or fails on time.
#
# Knobs (environment): BENCH_REQUESTS (keep-alive runs, default 50000), BENCH_RUNS (whole-process
# runs per command per round, default 20), BENCH_ROUNDS (interleaved rounds, default 5),
# BENCH_MILLION_SECONDS (time cap for the 10^6-request memory run, default 240), BENCH_OUT
# (default docs/BENCHMARKS.md), RC_AGENT_BIN (the agent to measure).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${RC_SANDBOX:-}" ] || { echo "run me through scripts/with-keyring.sh" >&2; exit 2; }

requests=${BENCH_REQUESTS:-50000}
runs=${BENCH_RUNS:-20}
rounds=${BENCH_ROUNDS:-5}
million_seconds=${BENCH_MILLION_SECONDS:-240}
out=${BENCH_OUT:-docs/BENCHMARKS.md}
debug_bin=$(swift build --show-bin-path)
standin="$debug_bin/rc-standin"
# The load client in release when `make bench` built it there (a debug client caps throughput).
bench="${RELEASE_SCRATCH:-.build-release}/release/rc-bench"
[ -x "$bench" ] || bench="$debug_bin/rc-bench"
if [ -n "${RC_AGENT_BIN:-}" ]; then
    agent=$RC_AGENT_BIN build="given (RC_AGENT_BIN)"
elif [ -x "${RELEASE_SCRATCH:-.build-release}/release/rc-agent" ]; then
    agent="${RELEASE_SCRATCH:-.build-release}/release/rc-agent" build="release (make release, -c release --static-swift-stdlib)"
else
    agent="$debug_bin/rc-agent" build="DEBUG (make release was not available): numbers are pessimistic"
fi
agent=$(realpath "$agent")
work="$RC_SANDBOX/bench"
mkdir -p "$work" && chmod 700 "$work"
results="$work/results"
: >"$results"
note() { printf '%s\n' "$*" | tee -a "$results"; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# A made-up client for the stand-in; the secret goes in through stdin only.
secret="bench-secret-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf 'bench-client:%s\n' "$secret" | "$standin" --clients-file - >"$work/standin.out" 2>"$work/standin.err" &
standin_pid=$!
agent_pid=""
ssh_agent_pid=""
cleanup() {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
    [ -n "$ssh_agent_pid" ] && kill "$ssh_agent_pid" 2>/dev/null
    kill "$standin_pid" 2>/dev/null
    wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 200); do grep -q '^port=' "$work/standin.out" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/^port=//p' "$work/standin.out")
tenant="http://127.0.0.1:$port"
counter() { curl -sf "$tenant/_standin/counters" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_requests"])'; }
printf '%s\n' "$secret" | "$agent" login --url "$tenant" --client-id bench-client --client-secret-stdin >"$work/login.out"

sock="$XDG_RUNTIME_DIR/rc-bench/agent.sock"
mkdir -p "$(dirname "$sock")" && chmod 700 "$(dirname "$sock")"
export RC_AGENT_SOCK="$sock" RC_AGENT_NO_AUTOSTART=1

echo "== machine" >&2
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
note "machine nproc=$(nproc) cpu=\"$cpu\" kernel=$(uname -r) swift=\"$(swift --version 2>&1 | head -1)\" load_at_start=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
note "agent binary=$agent build=\"$build\" client=$bench"

echo "== startup" >&2
line=$("$bench" startup --socket "$sock" --runs 10 -- "$agent" daemon --socket "$sock")
note "$line"

echo "== agent" >&2
"$agent" daemon --socket "$sock" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 1 200); do curl -sf --unix-socket "$sock" http://localhost/healthz >/dev/null 2>&1 && break; sleep 0.02; done
note "rss label=start kb=$(rss_kb "$agent_pid")"

echo "== cold vs warm" >&2
before=$(counter)
line=$("$bench" cold --socket "$sock" --times 30)
note "$line upstream_calls=$(($(counter) - before))"
for c in 1 8 64; do
    "$bench" load --socket "$sock" --connections "$c" --requests 2000 >/dev/null # warm-up
    note "$("$bench" load --socket "$sock" --connections "$c" --requests "$requests")"
done

if command -v perf >/dev/null; then
    echo "== profile (perf, 1 connection)" >&2
    "$bench" load --socket "$sock" --connections 1 --requests "$requests" --seconds 6 >/dev/null &
    load=$!
    perf record -q -F 499 -g -o "$work/perf.data" -p "$agent_pid" -- sleep 4 >/dev/null 2>&1 || true
    wait "$load" || true
    perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -15 | sed -E 's/ +- +- *$//; s/ +$//' | cut -c1-150 >"$work/profile.txt" || true
fi

echo "== single flight" >&2
for n in 1 100 1000; do
    curl -sf -X DELETE --unix-socket "$sock" "http://localhost/v1/token" >/dev/null
    # Hold the one upstream call 0.5 s so every request arrives while it is in flight.
    curl -sf -X POST "$tenant/_standin/fail" -d '{"kind":"delay","seconds":0.5,"times":1}'
    before=$(counter)
    line=$("$bench" burst --socket "$sock" --concurrent "$n" --threads 2)
    note "$line upstream_calls=$(($(counter) - before))"
done
curl -sf -X POST "$tenant/_standin/clear-failures"

echo "== whole-process cost" >&2
ssh_dir="$work/ssh"
mkdir -p "$ssh_dir" && chmod 700 "$ssh_dir"
eval "$(ssh-agent -s -a "$ssh_dir/agent.sock")" >/dev/null
ssh_agent_pid=$SSH_AGENT_PID
ssh-keygen -q -t ed25519 -N '' -C bench -f "$ssh_dir/key"
ssh-add -q "$ssh_dir/key" 2>/dev/null
export SSH_AUTH_SOCK
commands=(
    "$agent token"
    "curl -sf --unix-socket $sock http://localhost/v1/token -o /dev/null"
    "secret-tool lookup service rc-agent profile default"
    "ssh-add -l"
)
names=("rc-agent token" "curl --unix-socket /v1/token" "secret-tool lookup" "ssh-add -l")
for round in $(seq 1 "$rounds"); do
    # Rotate the order each round so no command always runs first (interleaved).
    ordered=()
    for i in "${!commands[@]}"; do ordered+=("${commands[$(((i + round) % ${#commands[@]}))]}"); done
    hyperfine -N --style none --warmup 3 --runs "$runs" --export-json "$work/hyperfine-$round.json" "${ordered[@]}" >/dev/null 2>&1
done
python3 - "$work" "$rounds" "${commands[@]}" <<'EOF' >>"$results"
import json, statistics, sys
work, rounds, commands = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
times = {c: [] for c in commands}
for r in range(1, rounds + 1):
    for res in json.load(open(f"{work}/hyperfine-{r}.json"))["results"]:
        times[res["command"]] += res["times"]
for i, c in enumerate(commands):
    t = sorted(times[c])
    print(f"process index={i} runs={len(t)} median_ms={statistics.median(t)*1e3:.2f} mean_ms={statistics.mean(t)*1e3:.2f} "
          f"p90_ms={t[int(len(t)*0.9)]*1e3:.2f} min_ms={t[0]*1e3:.2f}")
EOF
tail -4 "$results" >&2

echo "== memory" >&2
"$bench" load --socket "$sock" --connections 8 --requests 100000 >"$work/mem1"
note "rss label=after_1e5 kb=$(rss_kb "$agent_pid") $(cat "$work/mem1")"
line=$("$bench" load --socket "$sock" --connections 8 --requests 900000 --seconds "$million_seconds")
total=$((100000 + $(field requests "$line")))
note "rss label=after_total kb=$(rss_kb "$agent_pid") total_requests=$total $line"
note "machine load_at_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\""

kill "$agent_pid" && wait "$agent_pid" 2>/dev/null || true
agent_pid=""
cp "$results" "${RELEASE_SCRATCH:-.build-release}/bench-results.txt" 2>/dev/null || true # to regenerate the doc
python3 scripts/bench-report.py "$results" "$work/profile.txt" "$build" >"$out"
echo "wrote $out" >&2
