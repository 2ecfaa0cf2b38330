# The user-facing commands. The build itself is CMake's; this file names the
# steps. Everything they need beyond gcc, make and cmake they install.
#   make            build (build/release)
#   make tour       build and run `conc tour`, the live tour of concurrency
#   make test       the whole suite: optimised, ThreadSanitizer, ASan+UBSan
#   make stress     the stress tests at full size and more (CONC_TEST_SCALE=10),
#                   then make fuzz
#   make fuzz       the frame decoder under libFuzzer for FUZZ_SECONDS (300)
#   make test-aarch64  the coroutine tests cross-compiled for aarch64 and run
#                   under qemu-user (also part of make test, in the optimised
#                   build; installs gcc-aarch64-linux-gnu and qemu-user)
#   make bench      conc against its peers, side by side; records the run under
#                   docs/bench/runs/ (one file per processor; a CASES=... run
#                   replaces those cases only) and rewrites docs/bench/README.md
#                   (CASES=glob picks cases, QUICK=1 shortens, REPS=n repetitions)
#   make install    install into PREFIX (default /usr/local)
PREFIX ?= /usr/local
BUILD := build/release
JOBS ?= 2

.PHONY: all build tour test test-aarch64 stress fuzz bench install clean

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory

# The tour builds what it runs (the library and the conc command), quietly:
# the build's own lines go to build/tour-build.log, shown only on failure.
tour:
	@echo "building conc (library and the conc command; the first time takes a few seconds)..."
	@mkdir -p build
	@{ cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo && \
	   cmake --build $(BUILD) -j$(JOBS) --target conc_tool -- --no-print-directory; } \
	   >build/tour-build.log 2>&1 || { cat build/tour-build.log; exit 1; }
	@$(BUILD)/tools/conc tour

test:
	@tools/run-tests.sh

# Exit 77 is the script's "cross compiler or qemu missing: skipped".
test-aarch64:
	@tools/test-aarch64.sh || [ $$? -eq 77 ]

stress:
	@CONC_TEST_SCALE=$${CONC_TEST_SCALE:-10} VARIANTS=$${VARIANTS:-release} tools/run-tests.sh
	@$(MAKE) --no-print-directory fuzz

# Exit 77 is the script's "clang or libFuzzer missing: skipped".
fuzz:
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-300} tools/fuzz-frame.sh || [ $$? -eq 77 ]

bench:
	@tools/install-deps.sh bench
	@cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONC_BUILD_BENCH=ON \
		-DCONC_BUILD_TESTS=OFF >/dev/null
	@cmake --build build/bench -j$(JOBS) --target conc-bench -- --no-print-directory
	@build/bench/bench/conc-bench $(if $(QUICK),--quick) $(if $(REPS),--reps $(REPS)) \
		$(if $(CASES),--cases '$(CASES)') | tee build/bench/results.jsonl
	@python3 bench/report.py build/bench/results.jsonl \
		"make bench$(if $(QUICK), QUICK=1)$(if $(REPS), REPS=$(REPS))$(if $(CASES), CASES='$(CASES)')" \
		docs/bench
	@echo "wrote docs/bench/README.md (this processor's section; the others kept)"

# Builds the libraries only (not the tests): libconc (shared and static) and
# libconc-tsan; then installs them.
install:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target conc_shared conc_static conc_tsan -- --no-print-directory
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build
