package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/strata-llm/strata/internal/buildinfo"
	"github.com/strata-llm/strata/llama"
)

func init() {
	register(command{name: "version", summary: "print the build: Strata's commit, Go, and what ggml's CPU code was compiled with", run: runVersion})
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: strata version")
		return errUsage
	}
	fmt.Fprintf(stdout, "strata %s (%s, %s/%s)\n", buildinfo.Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "llama.cpp: %s\n", llama.SystemInfo())
	return nil
}
