# The user-facing commands. The build itself is CMake's; this file names the
# steps. Everything they need beyond gcc, make and cmake they install.
#   make            build (build/release)
#   make tour       build and run `conc tour`, the live tour of concurrency
#   make test       the whole suite: optimised, ThreadSanitizer, ASan+UBSan
#   make stress     the stress tests at full size and more (CONC_TEST_SCALE=10)
#   make install    install into PREFIX (default /usr/local)
PREFIX ?= /usr/local
BUILD := build/release
JOBS ?= 2

.PHONY: all build tour test stress install clean

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory

tour: build
	@$(BUILD)/tools/conc tour

test:
	@tools/run-tests.sh

stress:
	@CONC_TEST_SCALE=$${CONC_TEST_SCALE:-10} VARIANTS=$${VARIANTS:-release} tools/run-tests.sh

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build
