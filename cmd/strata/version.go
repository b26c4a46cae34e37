package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/strata-llm/strata/llama"
)

// commit is Strata's revision, set by build.sh (-ldflags -X main.commit).
var commit string

func init() {
	register(command{name: "version", summary: "print the build: Strata's commit, Go, and what ggml's CPU code was compiled with", run: runVersion})
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: strata version")
		return errUsage
	}
	c := commit
	if c == "" {
		c = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 7 {
					c = s.Value[:7]
				}
			}
		}
	}
	fmt.Fprintf(stdout, "strata %s (%s, %s/%s)\n", c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "llama.cpp: %s\n", llama.SystemInfo())
	return nil
}
