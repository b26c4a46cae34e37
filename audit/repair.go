package audit

import (
	"errors"
	"io"
	"os"
)

// RepairResult says what Repair did.
type RepairResult struct {
	Summary Summary // the log after repair
	// RemovedBytes is the length of the torn line that was cut off.
	RemovedBytes int64
	// Completed is set when the last line lacked only its newline and was
	// otherwise the valid next entry; Repair added the newline and kept it.
	Completed bool
}

// Repair makes a log whose last line is torn valid again. It keeps every
// complete entry: if the unterminated last line is a valid next entry it
// gets its newline, otherwise it is truncated away. A log with any other
// problem is left untouched and the verification error is returned: Repair
// never discards data it cannot prove is an incomplete write. Repair takes
// the same lock as Open, so it cannot run under a live Log.
func Repair(path string) (RepairResult, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return RepairResult{}, err
	}
	defer f.Close()
	unlock, err := lockFile(f)
	if err != nil {
		return RepairResult{}, err
	}
	defer unlock()

	var sc scanner
	sum, err := sc.scan(io.NewSectionReader(f, 0, 1<<62), nil)
	var torn *TornTailError
	if !errors.As(err, &torn) {
		return RepairResult{Summary: sum}, err
	}
	tail := make([]byte, torn.Length)
	if _, err := f.ReadAt(tail, torn.Offset); err != nil {
		return RepairResult{Summary: sum}, err
	}
	var e Entry
	if parseLine(tail, &e) == "" && sc.check(&e, &sum, torn.Line) == nil {
		if _, err := f.WriteAt([]byte{'\n'}, torn.Offset+int64(len(tail))); err != nil {
			return RepairResult{Summary: sum}, err
		}
		sum.Entries++
		sum.LastSeq, sum.LastHash, sum.LastTimestampMs = e.Seq, e.ChainHash, e.TimestampMs
		sum.Bytes += int64(len(tail)) + 1
		return RepairResult{Summary: sum, Completed: true}, f.Sync()
	}
	if err := f.Truncate(torn.Offset); err != nil {
		return RepairResult{Summary: sum}, err
	}
	return RepairResult{Summary: sum, RemovedBytes: int64(torn.Length)}, f.Sync()
}
