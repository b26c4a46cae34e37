package routing

import (
	"errors"
	"fmt"
)

// Errors about trace files. Every error Read returns for a bad file wraps
// one of these in a *FormatError that names the field and its offset.
var (
	// ErrBadMagic is returned when a file does not start with "SRTG".
	ErrBadMagic = errors.New("routing: bad magic (not a routing trace)")
	// ErrVersion is returned when a trace's format version is not one
	// this package reads, or reserved flags are set.
	ErrVersion = errors.New("routing: unsupported trace version")
	// ErrTruncated is returned when a file ends inside a field or before
	// its end record; Read still returns the tokens of every complete
	// chunk with it.
	ErrTruncated = errors.New("routing: truncated trace")
	// ErrChecksum is returned when a header or chunk fails its CRC-32C.
	ErrChecksum = errors.New("routing: checksum mismatch")
	// ErrLimit is returned when a count or length exceeds the format's
	// limits, before anything is allocated for it.
	ErrLimit = errors.New("routing: count or length beyond the format's limits")
	// ErrHeader is returned when header values are inconsistent: no MoE
	// layers, layers out of order or past the model's, more experts used
	// than there are.
	ErrHeader = errors.New("routing: invalid trace header")
	// ErrExpert is returned when a routing names an expert the model does
	// not have, or a token's routing has the wrong length.
	ErrExpert = errors.New("routing: invalid routing")
	// ErrTrailing is returned when bytes follow a trace's end record, or a
	// header's declared length does not match its fields.
	ErrTrailing = errors.New("routing: unexpected bytes")
)

// Errors about writers and simulations.
var (
	// ErrClosed is returned by a Writer after Close.
	ErrClosed = errors.New("routing: writer closed")
	// ErrNoSizes is returned when a byte budget is simulated on a trace
	// whose header does not give every layer's expert size.
	ErrNoSizes = errors.New("routing: trace has no expert sizes for a byte budget")
	// ErrCapacity is returned for a capacity that is negative, or that
	// gives both slots and bytes.
	ErrCapacity = errors.New("routing: invalid capacity")
	// ErrPolicy is returned for a policy name this package does not know.
	ErrPolicy = errors.New("routing: unknown policy")
)

// FormatError reports where a trace file is wrong.
type FormatError struct {
	Field  string // e.g. "header.experts" or "chunk[3].token[17].layer[2]"
	Offset int64  // absolute file offset of the field
	Detail string // human-readable detail, may be empty
	Err    error  // one of the sentinels above
}

func (e *FormatError) Error() string {
	msg := fmt.Sprintf("%v: field %s at offset %d", e.Err, e.Field, e.Offset)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap returns the sentinel.
func (e *FormatError) Unwrap() error { return e.Err }
