package audit

import (
	"errors"
	"fmt"
)

// Errors that callers may branch on with errors.Is. The typed errors below
// wrap one of them and say where and why.
var (
	// ErrChainBroken is returned when an entry's chainHash does not match
	// its contents, or its prevChainHash does not match the entry before.
	ErrChainBroken = errors.New("audit: chain broken")

	// ErrSeqGap is returned when an entry's seq is not one more than the
	// previous entry's (the first entry has seq 1).
	ErrSeqGap = errors.New("audit: sequence gap")

	// ErrTimestampBackward is returned when an entry's timestampMs is less
	// than the previous entry's. Equal timestamps are allowed.
	ErrTimestampBackward = errors.New("audit: timestamp went backward")

	// ErrMalformedLine is returned when a line is not an entry in canonical
	// form.
	ErrMalformedLine = errors.New("audit: malformed line")

	// ErrTornTail is returned when the file ends in an incomplete line, as a
	// crash in the middle of a write leaves it. Repair removes it.
	ErrTornTail = errors.New("audit: torn last line")

	// ErrTruncated is returned when a signed checkpoint names an entry the
	// log no longer has.
	ErrTruncated = errors.New("audit: log truncated after a checkpoint")

	// ErrBadCheckpoint is returned when a checkpoint's signature does not
	// verify, or its chainHash differs from the log's entry at its seq.
	ErrBadCheckpoint = errors.New("audit: bad checkpoint")

	// ErrUnknownKind is returned when Append is given a kind that is not one
	// of the defined Kind constants.
	ErrUnknownKind = errors.New("audit: unknown kind")

	// ErrInvalidPayload is returned when Append is given a payload that is
	// not valid JSON or cannot be encoded as JSON.
	ErrInvalidPayload = errors.New("audit: invalid payload")

	// ErrEntryTooLarge is returned when Append is given an entry whose line
	// would be longer than MaxLineBytes. The reader rejects such a line, so
	// writing it would leave a log that neither Open nor Repair accepts;
	// nothing is written and the log goes on.
	ErrEntryTooLarge = errors.New("audit: entry too large")

	// ErrNotRecordedKey is returned when Recorder.Record is given a key
	// that is not one of RecordedKeys.
	ErrNotRecordedKey = errors.New("audit: key not recorded")

	// ErrClosed is returned when a Log is used after Close.
	ErrClosed = errors.New("audit: log closed")

	// ErrBroken is returned when an earlier write or fsync, of the log or
	// of its checkpoint file, failed in a way that left the file's state
	// unknown; the log must be reopened, which verifies it. It matches a
	// *WriteError with Broken set.
	ErrBroken = errors.New("audit: log broken by an earlier failure")

	// ErrLocked is returned when another Log, in this or another process,
	// has the file open.
	ErrLocked = errors.New("audit: log file locked by another writer")

	// ErrBadPublicKey is returned when a public key cannot be parsed.
	ErrBadPublicKey = errors.New("audit: bad public key")

	// ErrNoPublicKey is returned when checkpoints are to be verified without
	// a public key.
	ErrNoPublicKey = errors.New("audit: checkpoints given without a public key")
)

// ChainError reports an entry whose hashes do not hold.
type ChainError struct {
	Line   int    // 1-based line number
	Seq    uint64 // the entry's seq
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit: line %d, seq %d: chain broken: %s", e.Line, e.Seq, e.Reason)
}

// Unwrap returns ErrChainBroken.
func (e *ChainError) Unwrap() error { return ErrChainBroken }

// SeqGapError reports an entry whose seq is not the expected next one.
type SeqGapError struct {
	Line     int
	Expected uint64
	Got      uint64
}

func (e *SeqGapError) Error() string {
	return fmt.Sprintf("audit: line %d: sequence gap: expected seq %d, got %d", e.Line, e.Expected, e.Got)
}

// Unwrap returns ErrSeqGap.
func (e *SeqGapError) Unwrap() error { return ErrSeqGap }

// TimestampError reports an entry older than the one before it.
type TimestampError struct {
	Line int
	Seq  uint64
	Prev int64 // the previous entry's timestampMs
	Got  int64
}

func (e *TimestampError) Error() string {
	return fmt.Sprintf("audit: line %d, seq %d: timestamp went backward: %d after %d", e.Line, e.Seq, e.Got, e.Prev)
}

// Unwrap returns ErrTimestampBackward.
func (e *TimestampError) Unwrap() error { return ErrTimestampBackward }

// MalformedLineError reports a line that is not a canonical entry.
type MalformedLineError struct {
	Line   int
	Offset int64 // byte offset of the line in the file
	Reason string
}

func (e *MalformedLineError) Error() string {
	return fmt.Sprintf("audit: line %d (byte %d): malformed: %s", e.Line, e.Offset, e.Reason)
}

// Unwrap returns ErrMalformedLine.
func (e *MalformedLineError) Unwrap() error { return ErrMalformedLine }

// TornTailError reports an incomplete last line.
type TornTailError struct {
	Line   int
	Offset int64 // where the incomplete line starts; Repair truncates here
	Length int   // its length in bytes
}

func (e *TornTailError) Error() string {
	return fmt.Sprintf("audit: line %d (byte %d): torn last line of %d bytes with no newline; run repair", e.Line, e.Offset, e.Length)
}

// Unwrap returns ErrTornTail.
func (e *TornTailError) Unwrap() error { return ErrTornTail }

// TruncatedError reports a log that ends before a signed checkpoint.
type TruncatedError struct {
	CheckpointSeq uint64
	LastSeq       uint64 // the log's last seq; 0 for an empty log
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("audit: log truncated: a signed checkpoint covers seq %d but the log ends at seq %d", e.CheckpointSeq, e.LastSeq)
}

// Unwrap returns ErrTruncated.
func (e *TruncatedError) Unwrap() error { return ErrTruncated }

// CheckpointError reports a checkpoint that does not verify.
type CheckpointError struct {
	Seq    uint64
	Reason string
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("audit: checkpoint at seq %d: %s", e.Seq, e.Reason)
}

// Unwrap returns ErrBadCheckpoint.
func (e *CheckpointError) Unwrap() error { return ErrBadCheckpoint }

// WriteError reports a failed append. Neither the file nor the chain
// advanced unless Broken is set, in which case the log refuses further
// appends.
type WriteError struct {
	Op     string // "write", "fsync" or "checkpoint"
	Err    error
	Broken bool
}

func (e *WriteError) Error() string {
	if e.Broken {
		return fmt.Sprintf("audit: %s: %v (log is now broken; reopen it)", e.Op, e.Err)
	}
	return fmt.Sprintf("audit: %s: %v", e.Op, e.Err)
}

// Unwrap returns the underlying error.
func (e *WriteError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrBroken) true when the failure broke the log,
// so callers need not know which write it was.
func (e *WriteError) Is(target error) bool { return e.Broken && target == ErrBroken }
