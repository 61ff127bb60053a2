#!/usr/bin/env bash
# Release packaging for rc-agent: checks the release binary, generates the completions and the
# manual page from it, stages the install layout, builds the .deb, installs and uninstalls.
#   scripts/package.sh version                 the version (from RCAgentVersion.current)
#   scripts/package.sh check-binary            the release binary: --version, no toolchain library
#   scripts/package.sh assets                  check-binary, then completions, man page, changelog.gz
#   scripts/package.sh deb                     dist/rc-agent_VERSION_ARCH.deb
#   scripts/package.sh install DESTDIR PREFIX  the same layout under DESTDIR/PREFIX (after assets)
#   scripts/package.sh uninstall DESTDIR PREFIX
#   scripts/package.sh files PREFIX            the installed paths, one a line
# `make release` builds the binary first (swift build -c release --static-swift-stdlib
# --scratch-path .build-release); RELEASE_SCRATCH overrides the build folder.
# The stand-in (rc-standin) is never installed: the layout below is the whole list.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
scratch=${RELEASE_SCRATCH:-$root/.build-release}
case $scratch in /*) ;; *) scratch=$root/$scratch ;; esac
bin=$scratch/release/rc-agent
work=$scratch/package
assets=$work/assets
pkgdir=$root/packaging
export LC_ALL=C.UTF-8

die() { echo "package.sh: $*" >&2; exit 1; }

# The one version number lives in Sources/RCAgentCore/Support/Version.swift.
version() {
    local v
    v=$(sed -n 's/^[[:space:]]*public static let current = "\([^"]*\)".*/\1/p' \
        "$root/Sources/RCAgentCore/Support/Version.swift")
    [ -n "$v" ] || die "no 'public static let current = \"…\"' in Version.swift"
    echo "$v"
}

# The release date is the top changelog entry's: the man page's date and the files' mtimes, so
# that two builds of one release give the same package.
release_epoch() { date -d "$(dpkg-parsechangelog -l "$pkgdir/debian/changelog" -S Date)" +%s; }

# src|mode|path-under-PREFIX, one a line: the whole install layout, for stage, uninstall and the test.
# zsh: Debian's zsh reads packages' completions from vendor-completions; elsewhere site-functions
# is in zsh's default fpath.
layout() {
    local prefix=$1 zsh=share/zsh/site-functions
    [ "$prefix" = /usr ] && zsh=share/zsh/vendor-completions
    cat <<EOF
$assets/rc-agent|0755|bin/rc-agent
$assets/rc-agent.service|0644|lib/systemd/user/rc-agent.service
$assets/rc-agent.socket|0644|lib/systemd/user/rc-agent.socket
$assets/rc-agent@.service|0644|lib/systemd/system/rc-agent@.service
$assets/rc-agent.bash|0644|share/bash-completion/completions/rc-agent
$assets/_rc-agent|0644|$zsh/_rc-agent
$assets/rc-agent.fish|0644|share/fish/vendor_completions.d/rc-agent.fish
$assets/rc-agent.1.gz|0644|share/man/man1/rc-agent.1.gz
$pkgdir/debian/copyright|0644|share/doc/rc-agent/copyright
$root/README.md|0644|share/doc/rc-agent/README.md
$root/PROTOCOL.md|0644|share/doc/rc-agent/PROTOCOL.md
$assets/changelog.gz|0644|share/doc/rc-agent/changelog.gz
EOF
}

# libsecret and the GLib libraries under it are loaded when the keyring is first used
# (Sources/CLibSecretLoader), not at every start: the binary must not name them as needed. SwiftPM
# links every library pkg-config lists for libsecret-1, and swift build's command line cannot put
# --as-needed before them, so they are removed from the binary's needed list after linking.
lazy_libraries=(libsecret-1.so.0 libgio-2.0.so.0 libgobject-2.0.so.0 libglib-2.0.so.0)
# What Depends gets for them (dpkg-shlibdeps sees only needed libraries); 0.18: the D-Bus-path API.
lazy_depends="libglib2.0-0 (>= 2.26.0), libsecret-1-0 (>= 0.18)"

unneed_lazy_libraries() {
    local lib remove=()
    for lib in "${lazy_libraries[@]}"; do
        readelf -d "$bin" | grep -qF "(NEEDED)             Shared library: [$lib]" && remove+=(--remove-needed "$lib")
    done
    [ ${#remove[@]} -eq 0 ] || patchelf "${remove[@]}" "$bin"
}

check_binary() {
    [ -x "$bin" ] || die "$bin is missing: run 'make release'"
    local lib
    for lib in "${lazy_libraries[@]}"; do
        ! readelf -d "$bin" | grep -qF "[$lib]" || die "$bin names $lib as needed: run 'make release'"
    done
    # Every libsecret/GLib function must go through CLibSecretLoader's forwarders (a call the
    # forwarders miss would be bound to nothing) and none of them may be exported.
    local unforwarded
    unforwarded=$(readelf -W --dyn-syms "$bin" | awk '$8 ~ /^(g_|secret_)/ {print $8}' | sort -u)
    [ -z "$unforwarded" ] || die "$bin has dynamic libsecret/GLib symbols (not forwarded by CLibSecretLoader): $unforwarded"
    local want got toolchain libs
    want=$(version)
    got=$("$bin" --version)
    [ "$got" = "$want" ] || die "$bin --version says '$got', Version.swift says '$want' (stale build?)"
    # The toolchain root (/opt/swift here): nothing may be loaded from it, and no Swift runtime
    # library from anywhere (--static-swift-stdlib links them in).
    toolchain=$(dirname "$(dirname "$(dirname "$(readlink -f "$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)")")")")
    libs=$(ldd "$bin")
    if grep -qF "$toolchain/" <<<"$libs" || grep -qiE 'libswift|libFoundation|libdispatch|libBlocksRuntime|not found' <<<"$libs"; then
        echo "$libs" >&2
        die "$bin needs a library from the toolchain ($toolchain) or a missing one"
    fi
    if readelf -d "$bin" | grep -qE 'RPATH|RUNPATH'; then
        readelf -d "$bin" | grep -E 'RPATH|RUNPATH' >&2
        die "$bin has an RPATH/RUNPATH"
    fi
    echo "release binary ok: rc-agent $got, $(stat -c %s "$bin") bytes; libraries:"
    awk '{print "  " $1 " " $3}' <<<"$libs"
}

# Everything generated from the binary, never kept by hand: completions from
# `rc-agent --generate-completion-script`, the man page by swift-argument-parser's generate-manual
# (the GenerateManual plugin's tool, run on the release binary).
assets() {
    unneed_lazy_libraries
    check_binary
    local v epoch
    v=$(version)
    epoch=$(release_epoch)
    rm -rf "$assets" && mkdir -p "$assets"
    # Stripped as dh_strip does; lintian refuses unstripped binaries.
    strip --remove-section=.comment --remove-section=.note -o "$assets/rc-agent" "$bin"
    # bash-completion sources the file: a #! line only draws lintian's bash-completion-with-hashbang.
    "$bin" --generate-completion-script bash | sed '1{/^#!/d}' >"$assets/rc-agent.bash"
    "$bin" --generate-completion-script zsh >"$assets/_rc-agent"
    "$bin" --generate-completion-script fish >"$assets/rc-agent.fish"
    local unit
    for unit in rc-agent.service rc-agent.socket rc-agent@.service; do
        [ -f "$pkgdir/systemd/$unit" ] || die "packaging/systemd/$unit is missing"
        cp "$pkgdir/systemd/$unit" "$assets/$unit"
    done
    manual "$(date -u -d "@$epoch" +%F)" "$assets/man"
    # generate-manual writes `.Os` with no argument: name the release there, so the page shows
    # it. It also keeps a discussion's blank lines, which mdoc warns about: make them paragraphs.
    sed -i -e "s/^\.Os\$/.Os rc-agent $v/" -e 's/^$/.Pp/' "$assets/man/rc-agent.1"
    grep -q "^\.Os rc-agent $v\$" "$assets/man/rc-agent.1" || die "no .Os line in the generated man page"
    gzip -9n <"$assets/man/rc-agent.1" >"$assets/rc-agent.1.gz"
    gzip -9n <"$pkgdir/debian/changelog" >"$assets/changelog.gz"
    echo "$v" >"$assets/version"
    echo "assets for rc-agent $v in $assets"
}

# swift-argument-parser's GenerateManual plugin builds the whole package (rc-standin too) in
# release mode and then runs its `generate-manual` tool on each executable. We run that same tool
# on the release binary we ship, so the page matches it and nothing is built twice.
manual() {
    local date=$1 out=$2 tool
    tool=$(manual_tool)
    mkdir -p "$out"
    "$tool" "$bin" --date "$date" --section 1 --output-directory "$out"
    [ -s "$out/rc-agent.1" ] || die "generate-manual wrote no rc-agent.1"
}

# Builds generate-manual from the swift-argument-parser checkout SwiftPM resolved for this
# package (same version as the library the binary links), in its own scratch folder.
manual_tool() {
    local src=$scratch/checkouts/swift-argument-parser tools=$scratch/tools
    [ -f "$src/Package.swift" ] || die "no swift-argument-parser checkout in $scratch (run 'make release')"
    if [ ! -x "$tools/release/generate-manual" ] || [ "$src/Package.swift" -nt "$tools/release/generate-manual" ]; then
        swift build -c release --package-path "$src" --scratch-path "$tools" --product generate-manual \
            >"$work/generate-manual.log" 2>&1 || { cat "$work/generate-manual.log" >&2; die "could not build generate-manual"; }
    fi
    [ -x "$tools/release/generate-manual" ] || die "could not build generate-manual"
    echo "$tools/release/generate-manual"
}

# Copies the layout into DESTDIR/PREFIX; the units' ExecStart= and Documentation= follow PREFIX.
stage() {
    local destdir=$1 prefix=$2 src mode path
    [ -d "$assets" ] || die "no assets: run 'scripts/package.sh assets'"
    while IFS='|' read -r src mode path; do
        install -D -m "$mode" "$src" "$destdir$prefix/$path"
    done < <(layout "$prefix")
    sed -i -e "s|/usr/bin/rc-agent|$prefix/bin/rc-agent|g" -e "s|/usr/share/doc/rc-agent|$prefix/share/doc/rc-agent|g" \
        "$destdir$prefix/lib/systemd/user/rc-agent.service" "$destdir$prefix/lib/systemd/user/rc-agent.socket" \
        "$destdir$prefix/lib/systemd/system/rc-agent@.service"
}

# Depends: from the binary's libraries with dpkg-shlibdeps, which wants a debian/control; a
# throw-away one in a temp folder is enough. It maps each NEEDED library to its package and the
# least version from the package's symbols/shlibs files (e.g. libc6 (>= 2.34)).
depends() {
    local exe=$1 tmp out
    tmp=$(mktemp -d)
    mkdir "$tmp/debian"
    printf 'Source: rc-agent\n\nPackage: rc-agent\nArchitecture: any\n' >"$tmp/debian/control"
    out=$(cd "$tmp" && dpkg-shlibdeps -O -e"$exe" 2>"$tmp/warnings") || { cat "$tmp/warnings" >&2; rm -rf "$tmp"; die "dpkg-shlibdeps failed"; }
    rm -rf "$tmp"
    out=${out#shlibs:Depends=}
    [ -n "$out" ] || die "dpkg-shlibdeps found no dependency"
    # Packed relative relocations (lld -z pack-relative-relocs) need glibc 2.36's loader; the
    # binary says so with a version need (GLIBC_ABI_DT_RELR) that is not a symbol, which
    # dpkg-shlibdeps does not see. (grep reads all of readelf's output: with -q it could stop
    # early, readelf die of SIGPIPE and pipefail turn the match into a miss.)
    if readelf -V "$exe" | grep 'Name: GLIBC_ABI_DT_RELR' >/dev/null; then
        out=$(sed -E 's/libc6 \(>= 2\.([0-9]|[12][0-9]|3[0-5])(\.[0-9]+)?\)/libc6 (>= 2.36)/' <<<"$out")
    fi
    printf '%s, %s\n' "$out" "$lazy_depends" | sed 's/, /\n/g' | sort -u | paste -sd, | sed 's/,/, /g'
}

deb() {
    assets >/dev/null
    local v arch deps size epoch tree deb
    v=$(version)
    arch=$(dpkg --print-architecture)
    epoch=$(release_epoch)
    tree=$work/deb-root
    rm -rf "$tree"
    (umask 022 && mkdir -p "$tree/DEBIAN" && stage "$tree" /usr &&
        install -D -m 0644 "$pkgdir/debian/lintian-overrides" "$tree/usr/share/lintian/overrides/rc-agent")
    deps=$(depends "$tree/usr/bin/rc-agent")
    size=$(du -sk --apparent-size --exclude=DEBIAN "$tree" | cut -f1)
    sed -e "s/@VERSION@/$v/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$deps/" -e "s/@INSTALLED_SIZE@/$size/" \
        "$pkgdir/debian/control.in" >"$tree/DEBIAN/control"
    (cd "$tree" && find usr -type f | LC_ALL=C sort | xargs md5sum) >"$tree/DEBIAN/md5sums"
    chmod 0644 "$tree/DEBIAN/control" "$tree/DEBIAN/md5sums"
    find "$tree" -type d -exec chmod 0755 {} +
    find "$tree" -exec touch -h -d "@$epoch" {} +
    mkdir -p "$root/dist"
    deb=$root/dist/rc-agent_${v}_${arch}.deb
    SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$tree" "$deb" >/dev/null
    echo "built $deb ($(stat -c %s "$deb") bytes); Depends: $deps"
}

# Installs what `make release` generated; generates nothing, so `sudo make install` writes
# nothing into the build folder.
install_() {
    local destdir=$1 prefix=$2
    check_binary >/dev/null
    [ -f "$assets/version" ] && [ "$(cat "$assets/version")" = "$(version)" ] && [ ! "$bin" -nt "$assets/rc-agent" ] \
        || die "the packaging assets are missing or older than $bin: run 'make release'"
    stage "$destdir" "$prefix"
    echo "installed rc-agent $(version) into $destdir$prefix"
}

uninstall() {
    local destdir=$1 prefix=$2 path
    while IFS='|' read -r _ _ path; do
        rm -f "$destdir$prefix/$path"
    done < <(layout "$prefix")
    rmdir "$destdir$prefix/share/doc/rc-agent" 2>/dev/null || true
    echo "removed rc-agent from $destdir$prefix"
}

cmd=${1:-}
shift || true
case $cmd in
    version) version ;;
    check-binary) check_binary ;;
    assets) assets ;;
    deb) deb ;;
    install) [ $# -eq 2 ] || die "usage: install DESTDIR PREFIX"; install_ "$1" "$2" ;;
    uninstall) [ $# -eq 2 ] || die "usage: uninstall DESTDIR PREFIX"; uninstall "$1" "$2" ;;
    files) [ $# -eq 1 ] || die "usage: files PREFIX"; layout "$1" | cut -d'|' -f3 | sed "s|^|$1/|" ;;
    *) sed -n '2,11p' "$0" >&2; exit 64 ;;
esac
