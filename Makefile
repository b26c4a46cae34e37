# Strata's Makefile is a thin front for build.sh, which holds the logic
# (module download, third_party/llama.cpp links, native SIMD cgo flags).
# Variables such as STRATA_CPU=x86-64-v3 pass through the environment.

.PHONY: all build test bench cuda peers peer-bench deps env clean

all: build

build:
	./build.sh build

test:
	./build.sh test

bench:
	./build.sh bench

cuda:
	./build.sh cuda

peers:
	./build.sh peers

peer-bench:
	./build.sh peer-bench

deps:
	./build.sh deps

env:
	@./build.sh env

clean:
	./build.sh clean
