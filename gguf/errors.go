package gguf

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the reader returns wraps one of these in a
// *FormatError that names the field and the file offset, so callers can branch
// with errors.Is and people can read where a file went wrong.
var (
	// ErrBadMagic is returned when a file does not start with "GGUF".
	ErrBadMagic = errors.New("gguf: bad magic")
	// ErrVersion is returned when the GGUF version is not 2 or 3.
	ErrVersion = errors.New("gguf: unsupported version")
	// ErrTruncated is returned when a field extends past the end of the file.
	ErrTruncated = errors.New("gguf: truncated")
	// ErrTooLarge is returned when a count or length claims more bytes than
	// the file holds; it is detected before anything is allocated.
	ErrTooLarge = errors.New("gguf: count or size larger than the file")
	// ErrLimit is returned when a count or length fits the file but exceeds
	// one of the reader's absolute limits (limits.go), which keep a hostile
	// file, sparse and of any size, from demanding unbounded memory. It is
	// detected before anything is allocated for the field.
	ErrLimit = errors.New("gguf: count or size beyond the reader's limits")
	// ErrValueType is returned when a metadata value type is unknown, or an
	// array holds arrays (llama.cpp rejects nested arrays).
	ErrValueType = errors.New("gguf: invalid metadata value type")
	// ErrDuplicate is returned when a metadata key or a tensor name repeats.
	ErrDuplicate = errors.New("gguf: duplicate name")

	// ErrEmptyName is returned when a metadata key or a tensor name is
	// empty; llama.cpp's reader asserts on (and so aborts for) an empty key.
	ErrEmptyName = errors.New("gguf: empty name")
	// ErrAlignment is returned when general.alignment is not a uint32 power
	// of two.
	ErrAlignment = errors.New("gguf: bad alignment")
	// ErrTensor is returned when a tensor info is invalid: too many
	// dimensions, an unknown type, a row that is not whole blocks, an
	// element count that overflows, or a name that is too long.
	ErrTensor = errors.New("gguf: invalid tensor info")
	// ErrLayout is returned when tensor data is not laid out as llama.cpp
	// requires: each tensor at the aligned end of the previous one, all of it
	// inside the file.
	ErrLayout = errors.New("gguf: invalid tensor data layout")
	// ErrNotFound is returned when a tensor or key that a method needs is
	// absent.
	ErrNotFound = errors.New("gguf: not found")
	// ErrNotMoE is returned by ExpertRanges for a model without experts.
	ErrNotMoE = errors.New("gguf: not a mixture-of-experts model")
	// ErrRange is returned when a layer or expert index is out of range.
	ErrRange = errors.New("gguf: index out of range")
	// ErrWrite is returned when the Writer is used out of order or is given
	// data that does not match what was declared.
	ErrWrite = errors.New("gguf: invalid write")
)

// FormatError describes where a file is invalid: the field being read, the
// absolute file offset at which it starts, and what was wrong.
type FormatError struct {
	Field  string // e.g. "tensor_info[3].dims[1]" or `kv["general.alignment"]`
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
