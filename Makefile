# rc-agent — see README.md.
SWIFT ?= swift
BUILD_FLAGS ?=

.PHONY: all deps build test demo bench soak clean

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

# The main job end to end in a sandbox: private bus + gnome-keyring + the local stand-in.
demo: build
	scripts/with-keyring.sh scripts/demo.sh

clean:
	rm -rf .build
