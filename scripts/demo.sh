#!/usr/bin/env bash
# `make demo`: the main job end to end, inside scripts/with-keyring.sh's sandbox
# (private D-Bus + throw-away gnome-keyring + temporary HOME) against the local stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(swift build --show-bin-path)
rc_agent="$bin/rc-agent"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# A made-up client for the stand-in; a real secret never goes in a file like this.
demo_id="demo-client"
demo_secret="demo-secret-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"

portfile="$RC_SANDBOX/standin.port"
printf '%s:%s\n' "$demo_id" "$demo_secret" | "$bin/rc-standin" --clients-file - >"$portfile" &
standin=$!
trap 'kill $standin 2>/dev/null; "$rc_agent" stop >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 100); do grep -q '^port=' "$portfile" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/^port=//p' "$portfile")
url="http://127.0.0.1:$port"
echo "stand-in tenant listening at $url"

step "rc-agent login --url $url --client-id $demo_id --client-secret-stdin   (secret piped in)"
printf '%s\n' "$demo_secret" | "$rc_agent" login --url "$url" --client-id "$demo_id" --client-secret-stdin

step "rc-agent status"
"$rc_agent" status

step "secret-tool search --all service rc-agent   (what the keyring holds; secret not shown)"
secret-tool search --all service rc-agent 2>&1 | grep -v '^secret = '

step 'eval "$(rc-agent start)"'
eval "$("$rc_agent" start)"
echo "RC_AGENT_SOCK=$RC_AGENT_SOCK"

step 'curl --unix-socket "$RC_AGENT_SOCK" http://localhost/v1/token   (token shortened here)'
curl -sS --unix-socket "$RC_AGENT_SOCK" http://localhost/v1/token |
    sed -E 's/("access_token":")([^"]{6})[^"]*/\1\2…/'
echo

step 'rc-agent token | cut -c1-6   (what a script captures)'
"$rc_agent" token | cut -c1-6

step 'rc-agent exec -- sh -c '\''echo "RC_URL=$RC_URL, token of ${#RC_TOKEN} characters"'\'''
"$rc_agent" exec -- sh -c 'echo "RC_URL=$RC_URL, token of ${#RC_TOKEN} characters"'

step "rc-agent status"
"$rc_agent" status

step "rc-agent stop"
"$rc_agent" stop
echo
echo "demo finished: everything ran in a sandbox that is removed now."
