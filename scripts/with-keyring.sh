#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with gnome-keyring's Secret Service unlocked
# and a temporary HOME/XDG tree, so tests and the demo never touch the user's real keyring.
#   scripts/with-keyring.sh CMD [ARGS…]
# The sandbox's root is exported as RC_SANDBOX; it is removed afterwards unless KEEP_SANDBOX=1.
# RC_WITH_XVFB=1: a desktop too — Xvfb on a free display, exported as DISPLAY before the bus
# starts, so gnome-keyring's prompter (gcr-prompter, activated by the bus) shows its windows there.
set -euo pipefail

if [ -z "${RC_SANDBOX_INNER:-}" ]; then
    sandbox=$(mktemp -d /tmp/rc-agent-sandbox.XXXXXX)
    chmod 700 "$sandbox"
    mkdir -p "$sandbox/home" "$sandbox/runtime" "$sandbox/config" "$sandbox/state" "$sandbox/cache"
    chmod 700 "$sandbox/runtime"
    xvfb_pid=""
    cleanup() {
        if [ -n "$xvfb_pid" ]; then kill "$xvfb_pid" 2>/dev/null || true; wait "$xvfb_pid" 2>/dev/null || true; fi
        if [ "${KEEP_SANDBOX:-0}" != 1 ]; then rm -rf "$sandbox"; else echo "sandbox kept: $sandbox" >&2; fi
    }
    trap cleanup EXIT
    # HOME must be set before dbus-run-session: the daemon it activates inherits the bus's environment.
    export HOME="$sandbox/home" XDG_RUNTIME_DIR="$sandbox/runtime" XDG_CONFIG_HOME="$sandbox/config" \
        XDG_STATE_HOME="$sandbox/state" XDG_CACHE_HOME="$sandbox/cache" \
        RC_SANDBOX="$sandbox" RC_SANDBOX_INNER=1
    unset RC_AGENT_SOCK RC_AGENT_CONFIG RC_PROFILE DISPLAY WAYLAND_DISPLAY
    if [ "${RC_WITH_XVFB:-0}" = 1 ]; then
        # -displayfd: Xvfb picks a free display itself and writes its number once it accepts clients.
        # -noreset: without it the server resets when its last client leaves, and a client that
        # connects during the reset fails ("Can't open display").
        exec {display_fd}<> <(:)
        Xvfb -displayfd "$display_fd" -screen 0 1024x768x24 -nolisten tcp -noreset >"$sandbox/xvfb.log" 2>&1 &
        xvfb_pid=$!
        read -r -t 30 -u "$display_fd" display_number || { echo "Xvfb did not start:" >&2; cat "$sandbox/xvfb.log" >&2; exit 1; }
        exec {display_fd}<&-
        export DISPLAY=":$display_number"
    fi
    set +e
    dbus-run-session -- "$0" "$@"
    status=$?
    set -e
    exit $status
fi

# Inside the private bus. A non-empty password: an empty one makes the daemon try a GUI prompt.
export RC_TEST_KEYRING_PASSWORD="${RC_TEST_KEYRING_PASSWORD:-rc-agent-test-keyring}"
eval "$(printf '%s' "$RC_TEST_KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL
# Wait until the Secret Service answers (the daemon registers its name asynchronously).
for _ in $(seq 1 50); do
    if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; then
        break
    fi
    sleep 0.1
done
exec "$@"
