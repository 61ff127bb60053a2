#!/usr/bin/env bash
# Installs the Debian packages rc-agent builds and tests with, when any is missing.
# Runs apt-get update first (a fresh machine has no package lists); sudo only when not root.
# `install-deps.sh bench` adds what only `make bench` uses.
set -euo pipefail
packages=(
    libsecret-1-dev     # CLibSecret: headers and pkg-config file
    libkeyutils-dev     # CKeyutils: the kernel keyring (the keyctl backend)
    keyutils            # keyctl: tests look at what the kernel keyring holds, each in its own session
    pkgconf             # SwiftPM finds libsecret through pkg-config
    gnome-keyring       # the Secret Service the tests and the demo run against
    dbus dbus-bin       # dbus-run-session: a private session bus
    libsecret-tools     # secret-tool: tests check what the keyring holds
    curl                # curl --unix-socket: the socket API as scripts use it
    util-linux          # setpriv: the other-uid test, the hardening tests (as uid 65534)
    bsdutils            # script: a pseudo-terminal (the login-at-its-prompt test, api's pretty output)
    openssl             # the TLS tests' CA and certificates; openssl s_server -tls1_1: the TLS 1.2-minimum test
    systemd             # systemd-socket-activate: the socket-activation test
    openssh-client      # ssh-agent / ssh-add: the benchmark's local-agent floor
    hyperfine           # make bench: whole-process timings, interleaved runs
    python3-dbus python3-gi  # scripts/test-notification-service.py: a desktop notification daemon for tests
    python3             # scripts/interop-client.py: Python's http.client drives the socket API (InteropTests)
    xvfb                # the desktop tests' X display (scripts/with-keyring.sh, RC_WITH_XVFB=1)
    gcr                 # gcr-prompter: gnome-keyring's real unlock prompt, shown under Xvfb
    xdotool             # the desktop tests find the prompt and type into it
    xterm               # the terminal a person runs `rc-agent token` in (the screenshot shows it)
    fonts-dejavu-core   # the font xterm and the prompt draw with
    imagemagick         # import -window root: screenshots of the prompt and the reminder
    dunst               # a real notification server for the rotation reminder's screenshot
    dpkg-dev            # make deb: dpkg-deb, dpkg-shlibdeps (Depends:), dpkg-parsechangelog
    lintian             # make test-packaging: the .deb's checks
    man-db groff-base   # make test-packaging: man -l renders the generated page
    binutils            # make deb: strip; readelf for the release-binary check
    patchelf            # make release: libsecret and GLib leave the needed list (loaded at first use)
    tcsh fish           # start/stop tests evaluate the csh and fish lines in the real shells
)
if [ "${1:-}" = bench ]; then
    packages+=(
        linux-perf          # perf record: the agent's profile under load
        python3-matplotlib  # scripts/bench-plot.py: the latency-percentile plot (Debian's python3)
    )
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
