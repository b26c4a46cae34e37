package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/strata-llm/strata/audit"
)

func init() {
	register(command{name: "audit", summary: "verify or repair a tamper-evident audit log", run: runAudit})
}

const auditUsage = `usage:
  strata audit verify FILE [-pubkey K] [-checkpoints F]
  strata audit repair FILE

verify checks every entry of the audit log FILE (hash chain, sequence,
timestamps, canonical form) and prints OK with the entry count and last
hash, or FAIL with the first bad entry and why. With -pubkey (an ed25519
public key as hex, base64 or a file holding it) it also checks the signed
checkpoints in F (default FILE.checkpoints), which detects a log truncated
after a checkpoint. repair removes a torn last line left by a crash, keeping
every complete entry.
`

func runAudit(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	switch args[0] {
	case "verify":
		return auditVerify(args[1:], stdout, stderr)
	case "repair":
		return auditRepair(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, auditUsage)
		return flag.ErrHelp
	}
	fmt.Fprintf(stderr, "strata audit: unknown subcommand %q\n\n%s", args[0], auditUsage)
	return errUsage
}

// parseInterleaved parses flags that may come before or after the
// positional arguments ("FILE -pubkey K"), which flag.Parse alone stops at.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func auditVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit verify", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	pubkey := fs.String("pubkey", "", "ed25519 public `key` (hex, base64, or a file) for the signed checkpoints")
	cpPath := fs.String("checkpoints", "", "checkpoint `file` (default FILE.checkpoints); needs -pubkey")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "strata audit verify: want one FILE, got %d\n\n%s", len(files), auditUsage)
		return errUsage
	}
	path := files[0]
	// The library reads a missing log as an empty one (a log nothing has
	// been written to yet); asked to verify a file, the command says it
	// is not there.
	if _, err := os.Stat(path); err != nil {
		return err
	}
	var opts audit.VerifyOptions
	switch {
	case *pubkey != "":
		key, err := audit.ParsePublicKey(*pubkey)
		if err != nil {
			return err
		}
		if *cpPath == "" {
			*cpPath = audit.CheckpointPath(path)
		}
		cps, err := audit.ReadCheckpoints(*cpPath)
		if err != nil {
			return err
		}
		if len(cps) == 0 {
			fmt.Fprintf(stderr, "strata audit verify: warning: no checkpoints in %s; truncation cannot be detected\n", *cpPath)
		}
		opts = audit.VerifyOptions{PublicKey: key, Checkpoints: cps}
	case *cpPath != "":
		fmt.Fprintln(stderr, "strata audit verify: -checkpoints needs -pubkey")
		return errUsage
	}

	sum, err := audit.VerifyWith(path, opts)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL %s: %v\n", path, err)
		if sum.Entries > 0 {
			fmt.Fprintf(stdout, "     entries verified before it: %d (up to seq %d, hash %s)\n", sum.Entries, sum.LastSeq, sum.LastHash)
		}
		var torn *audit.TornTailError
		if errors.As(err, &torn) {
			fmt.Fprintf(stdout, "     run: strata audit repair %s\n", path)
		}
		return fmt.Errorf("%s does not verify", path)
	}
	if sum.Entries == 0 && len(opts.Checkpoints) == 0 {
		fmt.Fprintf(stderr, "strata audit verify: warning: %s is empty; without signed checkpoints (-pubkey) an emptied log cannot be told from a new one\n", path)
	}
	fmt.Fprintf(stdout, "OK %s: %d entries, last seq %d, last hash %s", path, sum.Entries, sum.LastSeq, sum.LastHash)
	if len(opts.Checkpoints) > 0 {
		fmt.Fprintf(stdout, ", %d signed checkpoints verified", sum.Checkpoints)
	}
	fmt.Fprintln(stdout)
	return nil
}

func auditRepair(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit repair", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "strata audit repair: want one FILE, got %d\n\n%s", len(files), auditUsage)
		return errUsage
	}
	res, err := audit.Repair(files[0])
	if err != nil {
		return err
	}
	switch {
	case res.Completed:
		fmt.Fprintf(stdout, "repaired %s: added the missing newline of the last entry", files[0])
	case res.RemovedBytes > 0:
		fmt.Fprintf(stdout, "repaired %s: removed a torn last line of %d bytes", files[0], res.RemovedBytes)
	default:
		fmt.Fprintf(stdout, "%s needed no repair", files[0])
	}
	fmt.Fprintf(stdout, "; %d entries, last hash %s\n", res.Summary.Entries, res.Summary.LastHash)
	return nil
}
