// Command strata is Strata's multi-purpose tool: it generates test and
// benchmark models, inspects GGUF files, runs generation, verifies audit
// logs and replays routing traces through cache policies.
//
// Usage:
//
//	strata <command> [flags] [args]
//
// Each command lives in a file of its own (gen.go, inspect.go, run.go,
// audit.go, paging.go) and registers itself with register from an init
// function.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand of strata.
type command struct {
	name    string
	summary string
	// run executes the command with the arguments after its name. It
	// writes results to stdout and diagnostics to stderr.
	run func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// register adds a subcommand; it is called from init functions only.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("strata: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// errUsage is returned by a command when its arguments were wrong and the
// flag package has already printed why.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-version" || args[0] == "--version") {
		args = []string{"version"}
	}
	if len(args) == 2 && args[0] == "help" {
		if _, ok := commands[args[1]]; ok { // strata help gen: gen's usage
			args = []string{args[1], "-h"}
		}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "strata: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := c.run(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) { // -h: the usage was asked for
			return 0
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(stderr, "strata %s: %v\n", c.name, err)
		return 1
	}
	return 0
}

// usageErr is what a command returns when its flags do not parse: the
// flag package has printed the problem and the usage, so the error only
// sets the exit status (0 for -h).
func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return errUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: strata <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}

// newFlagSet returns a flag set for a subcommand that reports errors to
// stderr instead of exiting the process.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("strata "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
