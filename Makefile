# rc-agent — see README.md.
SWIFT ?= swift
BUILD_FLAGS ?=

.PHONY: all deps build test demo bench soak fuzz clean release deb install uninstall test-packaging

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(BUILD_FLAGS)

# The whole suite (XCTest and Swift Testing), inside a private D-Bus session with an unlocked
# gnome-keyring and a temporary HOME, so it never touches your own keyring.
test: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	scripts/with-keyring.sh $(SWIFT) test --skip-build $(BUILD_FLAGS)
	$(MAKE) test-packaging

# The main job end to end in a sandbox: private bus + gnome-keyring + the local stand-in.
demo: build
	scripts/with-keyring.sh scripts/demo.sh

# libFuzzer targets for the proxy path check, the tenant URL parser, the config loader and the
# token endpoint's answer (scripts/fuzz.sh, docs/RELIABILITY.md): FUZZ_SECONDS each (default 45).
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGETS="$(FUZZ_TARGETS)" scripts/fuzz.sh

clean:
	rm -rf .build

# Packaging (see scripts/package.sh). The release build has its own folder, so it never waits
# for (or invalidates) the debug build in .build.
PREFIX ?= /usr/local
DESTDIR ?=
RELEASE_SCRATCH ?= .build-release
export RELEASE_SCRATCH

# A self-contained binary: the Swift runtime linked in, only system libraries left (checked), no
# $ORIGIN runpath, full RELRO (bind now). Size (issue 13, docs/BENCHMARKS.md): optimised for size
# (-Osize: the token fast path measured no slower), no dynamic symbol table of its own (nothing
# loads symbols from the executable; the static Swift runtime asks for -export-dynamic), linked by
# lld with packed relative relocations (DT_RELR, glibc 2.36). Together 37.6 -> about 30 MB stripped.
# Memory: every function in a section of its own (Swift and C), so the linker drops the unused ones
# (installed binary 29.8 -> 29.2 MB) and lays out first the ones a running agent and `rc-agent token` use
# (packaging/link-order.txt, from scripts/link-order.sh): the kernel maps the executable's code in
# 64 KB windows around each page it runs, and with the used code together instead of spread over
# 18 MB the agent's resident text went from 14 to about 8 MB.
LINK_ORDER = $(CURDIR)/packaging/link-order.txt
RELEASE_FLAGS = -c release --static-swift-stdlib --disable-local-rpath -Xswiftc -Osize -Xswiftc -use-ld=lld \
	-Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xcc -fdata-sections \
	-Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now -Xlinker --no-export-dynamic \
	-Xlinker -z -Xlinker pack-relative-relocs \
	-Xlinker --symbol-ordering-file=$(LINK_ORDER) -Xlinker --no-warn-symbol-ordering --scratch-path $(RELEASE_SCRATCH)

# Then the completions and the man page generated from it (.build-release/package/assets).
# SwiftPM does not know the order file: a newer one than the binary relinks it.
release: deps
	if [ $(LINK_ORDER) -nt $(RELEASE_SCRATCH)/release/rc-agent ]; then rm -f $(RELEASE_SCRATCH)/release/rc-agent; fi
	$(SWIFT) build $(RELEASE_FLAGS) --product rc-agent
	scripts/package.sh assets

# dist/rc-agent_VERSION_ARCH.deb, built with dpkg-deb (no network).
deb: release
	scripts/package.sh deb

# For systems without dpkg: the same layout under $(DESTDIR)$(PREFIX). Installs what
# `make release` built (so `make release && sudo make install` builds nothing as root).
install:
	scripts/package.sh install "$(DESTDIR)" "$(PREFIX)"

uninstall:
	scripts/package.sh uninstall "$(DESTDIR)" "$(PREFIX)"

# Builds the .deb and checks it: files, control fields, the installed binary, completions, man
# page, systemd-analyze verify, lintian, make install/uninstall. Run by `make test`.
test-packaging: release
	scripts/test-packaging.sh

# Benchmarks (scripts/bench.sh, in the keyring sandbox) → docs/BENCHMARKS.md and its plot: the
# release agent and .deb, side by side with ssh-agent; the load client built with the same flags in
# the same folder (a debug client caps the rate). Extra packages: perf, matplotlib for the plot.
bench: build deb
	scripts/install-deps.sh bench
	$(SWIFT) build $(RELEASE_FLAGS) --product rc-bench
	scripts/with-keyring.sh scripts/bench.sh

# The reliability suite (scripts/soak.sh; docs/RELIABILITY.md), bounded, loopback only, in its own
# keyring sandbox (it kills and restarts that keyring daemon). SHORT=1: the form `make test` runs
# (IntegrationTests/ReliabilityTests).
soak: build
	SHORT=$(SHORT) scripts/with-keyring.sh scripts/soak.sh
