#!/usr/bin/env bash
# `make bench`: measures the agent against its targets (issue 13), side by side with ssh-agent in
# the same run, and writes docs/BENCHMARKS.md and its plot (docs/bench-latency.png).
# Runs inside scripts/with-keyring.sh (private D-Bus + gnome-keyring + temporary HOME), against
# the local stand-in on 127.0.0.1. A benchmark, not a test: nothing passes or fails on time.
#
# Knobs (environment): BENCH_SECONDS (each side-by-side run, default 3), BENCH_SIDE_ROUNDS
# (interleaved side-by-side rounds, default 3), BENCH_RUNS (whole-process runs per command per
# round, default 20), BENCH_ROUNDS (interleaved whole-process rounds, default 5),
# BENCH_MILLION_SECONDS (time cap for the 10^6-request memory run, default 120), BENCH_BAD
# (bad requests after warm-up, default 100000), BENCH_OUT (default docs/BENCHMARKS.md),
# RC_AGENT_BIN (the agent to measure).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${RC_SANDBOX:-}" ] || { echo "run me through scripts/with-keyring.sh" >&2; exit 2; }

seconds=${BENCH_SECONDS:-3}
side_rounds=${BENCH_SIDE_ROUNDS:-3}
runs=${BENCH_RUNS:-20}
rounds=${BENCH_ROUNDS:-5}
million_seconds=${BENCH_MILLION_SECONDS:-120}
bad=${BENCH_BAD:-100000}
out=${BENCH_OUT:-docs/BENCHMARKS.md}
began=$(date +%s)
debug_bin=$(swift build --show-bin-path)
standin="$debug_bin/rc-standin"
# The load client in release when `make bench` built it there (a debug client caps throughput).
bench="${RELEASE_SCRATCH:-.build-release}/release/rc-bench"
[ -x "$bench" ] || bench="$debug_bin/rc-bench"
if [ -n "${RC_AGENT_BIN:-}" ]; then
    agent=$RC_AGENT_BIN build="given (RC_AGENT_BIN)"
elif [ -x "${RELEASE_SCRATCH:-.build-release}/release/rc-agent" ]; then
    agent="${RELEASE_SCRATCH:-.build-release}/release/rc-agent" build="release (make release: -c release -Osize --static-swift-stdlib, lld, DT_RELR)"
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
# rss_parts PID: the anonymous and file-backed parts of the RSS (where a change comes from).
rss_parts() { awk '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} END {print "anon_kb=" a " file_kb=" f}' "/proc/$1/status"; }

. scripts/bench-lib.sh
standin_pid=""
agent_pid=""
ssh_agent_pid=""
nio_pid=""
cleanup() {
    [ -n "$nio_pid" ] && kill "$nio_pid" 2>/dev/null
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
    [ -n "$ssh_agent_pid" ] && kill "$ssh_agent_pid" 2>/dev/null
    [ -n "$standin_pid" ] && kill "$standin_pid" 2>/dev/null
    wait 2>/dev/null || true
}
trap cleanup EXIT
start_standin "$work" "$agent"
counter() { curl -sf "$tenant/_standin/counters" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_requests"])'; }

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
wait_for_agent "$sock"
note "rss label=start kb=$(rss_kb "$agent_pid") $(rss_parts "$agent_pid")"

echo "== ssh-agent" >&2
ssh_dir="$work/ssh"
mkdir -p "$ssh_dir" && chmod 700 "$ssh_dir"
eval "$(ssh-agent -s -a "$ssh_dir/agent.sock")" >/dev/null
ssh_agent_pid=$SSH_AGENT_PID
ssh-keygen -q -t ed25519 -N '' -C bench -f "$ssh_dir/key"
ssh-add -q "$ssh_dir/key" 2>/dev/null
export SSH_AUTH_SOCK

echo "== the stack's ceiling" >&2
# A bare SwiftNIO HTTP/1 server on one event loop answering a constant as long as the token answer.
body_bytes=$(curl -sf --unix-socket "$sock" http://localhost/v1/token | wc -c)
start_ceiling "$work/nio.sock" "$body_bytes"

echo "== cold" >&2
before=$(counter)
line=$("$bench" cold --socket "$sock" --times 30)
note "$line upstream_calls=$(($(counter) - before))"

echo "== side by side with ssh-agent" >&2
# The same client (rc-bench raw: plain sockets and poll(2), one thread) against both agents:
# rc-agent's cached GET /v1/token as JSON and as text, ssh-agent's REQUEST_IDENTITIES (one
# ed25519 key), and the bare NIO server (the ceiling). Interleaved: each round runs every mode,
# and within a mode the targets in an order that rotates, so a burst of load from elsewhere
# falls on all of them alike.
targets=(rc-json rc-text ssh nio)
run_target() { # target mode connections round
    local target=$1 mode=$2 connections=$3 round=$4
    local common=(--connecting "$mode" --connections "$connections" --seconds "$seconds" --label side
        --tag "round=$round target=$target")
    case $target in
    rc-json) "$bench" raw --socket "$sock" --wire http --path /v1/token "${common[@]}" ;;
    rc-text) "$bench" raw --socket "$sock" --wire http --path /v1/token --accept text/plain "${common[@]}" ;;
    ssh) "$bench" raw --socket "$SSH_AUTH_SOCK" --wire ssh "${common[@]}" ;;
    nio) "$bench" raw --socket "$work/nio.sock" --wire http --path /v1/token "${common[@]}" ;;
    esac
}
for t in "${targets[@]}"; do run_target "$t" keep-alive 8 0 >/dev/null; done # warm-up
for round in $(seq 1 "$side_rounds"); do
    for mode_conns in keep-alive:1 keep-alive:8 fresh:1 fresh:8; do
        mode=${mode_conns%:*} connections=${mode_conns#*:}
        for i in 0 1 2 3; do
            t=${targets[$(((i + round + connections) % 4))]}
            note "$(run_target "$t" "$mode" "$connections" "$round")"
        done
    done
done

kill "$nio_pid" && wait "$nio_pid" 2>/dev/null || true
nio_pid=""
note "rss label=before_bursts kb=$(rss_kb "$agent_pid") $(rss_parts "$agent_pid")"

if command -v perf >/dev/null; then
    echo "== profile (perf, 1 connection)" >&2
    "$bench" raw --socket "$sock" --connections 1 --seconds 6 >/dev/null &
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
note "rss label=after_bursts kb=$(rss_kb "$agent_pid") $(rss_parts "$agent_pid")"

echo "== whole-process cost" >&2
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
note "rss label=after_processes kb=$(rss_kb "$agent_pid") $(rss_parts "$agent_pid")"
# 10^6 cached-token requests in all (the side-by-side runs above come on top), then bad input:
# a warm-up of 10^4 generated bad requests, then BENCH_BAD more; RSS after each.
line=$("$bench" raw --socket "$sock" --connections 8 --requests 1000000 --seconds "$million_seconds" --label million)
note "rss label=after_million kb=$(rss_kb "$agent_pid") $(rss_parts "$agent_pid") $line"
# Each reading waits 6 s: the agent gives the allocator's freed memory back once its connections
# have closed, at most every 5 s (AgentServerLimits.memoryReleaseChurn); what it keeps is the growth.
"$bench" bad-input --socket "$sock" --count 10000 --slowloris 0 --pid "$agent_pid" >"$work/bad-warm"
sleep 6
note "rss label=bad_warm kb=$(rss_kb "$agent_pid") $(cat "$work/bad-warm")"
line=$("$bench" bad-input --socket "$sock" --count "$bad" --slowloris 0 --pid "$agent_pid")
sleep 6
note "rss label=bad_after kb=$(rss_kb "$agent_pid") $line"
note "machine load_at_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\" bench_seconds=$(($(date +%s) - began))"

kill "$agent_pid" && wait "$agent_pid" 2>/dev/null || true
agent_pid=""
deb=$(ls -t dist/rc-agent_*.deb 2>/dev/null | head -1 || true)
# The installed binary is the stripped one `make release` puts with the package assets.
installed="${RELEASE_SCRATCH:-.build-release}/package/assets/rc-agent"
[ -f "$installed" ] || installed=$agent
note "sizes binary_bytes=$(stat -c %s "$installed") deb_bytes=$([ -n "$deb" ] && stat -c %s "$deb" || echo 0) deb=${deb:-none}"
cp "$results" "${RELEASE_SCRATCH:-.build-release}/bench-results.txt" 2>/dev/null || true # to regenerate the doc
plot_python=/usr/bin/python3 # Debian's python3-matplotlib is installed for the system python
"$plot_python" scripts/bench-plot.py "$results" "$(dirname "$out")/bench-latency.png" ||
    echo "no plot (python3-matplotlib missing?)" >&2
python3 scripts/bench-report.py "$results" "$work/profile.txt" "$build" >"$out"
echo "wrote $out" >&2
