# xems top-level Makefile: the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc)
CONF       ?= etc/xemsd.conf

.PHONY: all deps build build-asan fuzz run test test-unit bench perf clean

all: build

deps:
	@.ci/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ -DCMAKE_C_COMPILER=gcc

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Sanitizer build with clang: covers the second compiler and ASan+UBSan in one go.
$(BUILD_ASAN)/build.ninja: | deps
	cmake -S . -B $(BUILD_ASAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DXEMS_SANITIZE=ON -DXEMS_BENCH=OFF \
	  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang

build-asan: deps $(BUILD_ASAN)/build.ninja
	cmake --build $(BUILD_ASAN) -j $(JOBS)

$(BUILD_FUZZ)/build.ninja: | deps
	cmake -S . -B $(BUILD_FUZZ) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXEMS_FUZZ=ON -DXEMS_BENCH=OFF \
	  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang

fuzz: deps $(BUILD_FUZZ)/build.ninja
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzzers

run: build
	$(BUILD)/tools/xemsd --config-file $(CONF) --foreground

test: build build-asan fuzz
	tests/run_all.sh $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)

test-unit: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure -j $(JOBS)

bench: build
	perf/run_bench.sh $(BUILD)

perf: build
	perf/run_perf.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
