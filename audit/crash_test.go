package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// crashEnv makes TestCrashChild the body of a child process that appends in
// a tight loop to the log it names until it is killed.
const crashEnv = "STRATA_AUDIT_CRASH_CHILD"

// TestCrashChild is the child process of TestSIGKILLLeavesRepairableLog. It
// writes the seq of every entry whose Append returned to file descriptor 3.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child process of TestSIGKILLLeavesRepairableLog")
	}
	l, err := Open(path, &Options{Sync: SyncNone})
	if err != nil {
		os.Exit(3)
	}
	acks := bufio.NewWriterSize(os.NewFile(3, "acks"), 64)
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
	for {
		// Mostly small entries; some of up to 1 MiB, whose write(2) a
		// SIGKILL can cut short.
		n := rng.IntN(200)
		if rng.IntN(8) == 0 {
			n = rng.IntN(1 << 20)
		}
		payload := make([]byte, 0, n+2)
		payload = append(append(append(payload, '"'), bytes.Repeat([]byte{'x'}, n)...), '"')
		e, err := l.Append(KindAccessDenied, json.RawMessage(payload))
		if err != nil {
			os.Exit(4)
		}
		acks.WriteString(strconv.FormatUint(e.Seq, 10) + "\n")
		acks.Flush()
	}
}

// A process killed with SIGKILL in the middle of appending leaves a log
// that verifies after Repair and still holds every acknowledged entry.
func TestSIGKILLLeavesRepairableLog(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	path := filepath.Join(t.TempDir(), "crash.log")
	var acked uint64
	for round := range 4 {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		cmd.ExtraFiles = []*os.File{pw}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()

		// Kill it once it has acknowledged some entries of this round.
		target := acked + 20 + uint64(round*25)
		sc := bufio.NewScanner(pr)
		killed := false
		for sc.Scan() {
			seq, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("child wrote %q", sc.Text())
			}
			acked = max(acked, seq)
			if !killed && seq >= target {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		pr.Close()
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, want killed by SIGKILL", round, err)
		}

		res, err := Repair(path)
		if err != nil {
			t.Fatalf("round %d: Repair: %v", round, err)
		}
		t.Logf("round %d: acked %d, log has %d entries, repair removed %d bytes, completed=%v",
			round, acked, res.Summary.LastSeq, res.RemovedBytes, res.Completed)
		sum, err := Verify(path)
		if err != nil {
			t.Fatalf("round %d: Verify after Repair: %v", round, err)
		}
		if sum.LastSeq < acked {
			t.Fatalf("round %d: log ends at seq %d, but the child acknowledged seq %d", round, sum.LastSeq, acked)
		}
		acked = sum.LastSeq
	}
}
