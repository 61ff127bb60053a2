#!/usr/bin/env bash
# `make fuzz`: libFuzzer targets for the proxy path check, the tenant URL parser, the config loader
# and the token endpoint's answer (fuzz/Targets), each run for FUZZ_SECONDS (default 45) from its
# committed seed corpus (fuzz/corpus/NAME). Loopback only: nothing here talks to a network.
#
# How it is built: the debug build (`swift build`) provides the dependencies' modules and objects
# (swift-log, not instrumented); RCAgentCore's sources are compiled
# again with `swiftc -sanitize=fuzzer` (coverage-instrumented), and each target is one harness
# file (plus the one product file it checks, ProxyTarget.swift for the proxy) linked against them.
#
# A crash leaves its input in .build/fuzz/artifacts/NAME/ and fails the run: add that input as a
# test case (Tests/RCAgentCoreTests/FuzzFindingsTests.swift) and to the seed corpus, then fix it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-45}
targets=(${FUZZ_TARGETS:-proxy_path tenant_url config_loader token_response})
swiftc=${SWIFTC:-swiftc}
debug=$(swift build --show-bin-path)
out=.build/fuzz
mkdir -p "$out/mod" "$out/artifacts"

echo "== building (swift build, then RCAgentCore with -sanitize=fuzzer)"
swift build --product rc-agent >/dev/null
# Everything RCAgentCore imports, from the debug build: modules and objects.
deps=("$debug"/Logging.build/*.o)
imports=(-I "$debug/Modules")
mapfile -t core < <(find Sources/RCAgentCore -name '*.swift' | sort)
"$swiftc" -sanitize=fuzzer -parse-as-library -module-name RCAgentCore -package-name rc_agent -enable-testing -wmo -O -g \
    -emit-module -emit-module-path "$out/mod/RCAgentCore.swiftmodule" -c "${core[@]}" -o "$out/RCAgentCore.o" \
    "${imports[@]}"

failed=0
summary=()
for name in "${targets[@]}"; do
    extra=()
    [ "$name" = proxy_path ] && extra=(Sources/RCAgentDaemon/Routes/ProxyTarget.swift)
    "$swiftc" -sanitize=fuzzer -parse-as-library -module-name "fuzz_$name" -package-name rc_agent -O -g \
        "fuzz/Targets/$name.swift" "${extra[@]}" "$out/RCAgentCore.o" "${deps[@]}" \
        -I "$out/mod" "${imports[@]}" -o "$out/fuzz-$name"
    work="$out/corpus/$name"
    mkdir -p "$work" "$out/artifacts/$name"
    echo "== $name: ${seconds}s from fuzz/corpus/$name ($(ls "fuzz/corpus/$name" | wc -l) seeds)"
    log="$out/$name.log"
    # The Swift runtime's backtracer would take the trap before libFuzzer saves the input.
    if SWIFT_BACKTRACE=enable=no "$out/fuzz-$name" "$work" "fuzz/corpus/$name" -max_total_time="$seconds" -max_len=4096 \
        -artifact_prefix="$out/artifacts/$name/" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="CRASH ($(ls "$out/artifacts/$name" | head -1))"
        failed=1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
    summary+=("$name: $result, $runs runs, coverage $cov edges")
    echo "   ${summary[-1]}"
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
