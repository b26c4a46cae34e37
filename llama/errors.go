package llama

import (
	"errors"
	"fmt"
)

// Sentinel errors that callers branch on. C failures are reported as
// *Error, which wraps one of these where the code has a known meaning.
var (
	// ErrKVCacheFull is returned when Decode finds no free slot in the KV
	// cache for the batch (llama_decode returned 1). Shrink the batch,
	// remove sequences or use a larger context.
	ErrKVCacheFull = errors.New("llama: no KV cache slot for the batch")

	// ErrAborted is returned when a decode was stopped through
	// Context.Interrupt or a cancelled context.Context (llama_decode
	// returned 2).
	ErrAborted = errors.New("llama: decode aborted")

	// ErrLoadCancelled is returned when a model load was stopped by the
	// progress callback or by the context passed to LoadModelContext.
	ErrLoadCancelled = errors.New("llama: model load cancelled")

	// ErrClosed is returned when a method is called on a Model, Context,
	// Sampler or Adapter that was already closed.
	ErrClosed = errors.New("llama: use of closed object")

	// ErrInvalidBatch is returned when a batch is empty, holds more tokens
	// than it was created for, or names a sequence out of range.
	ErrInvalidBatch = errors.New("llama: invalid batch")

	// ErrTokenOutOfRange is returned when a token id is not in the
	// model's vocabulary.
	ErrTokenOutOfRange = errors.New("llama: token id out of range")

	// ErrNoLogits is returned when logits are requested for a batch
	// position that was not marked for output.
	ErrNoLogits = errors.New("llama: no logits for that position")

	// ErrUnknownBufferType is returned when a tensor override names a
	// buffer type that no registered backend device provides.
	ErrUnknownBufferType = errors.New("llama: unknown buffer type")

	// ErrCallbackPanic is returned when a Go callback that llama.cpp
	// called (an Observer's Func, ModelParams.Progress) panicked: the
	// panic is recovered before it can unwind through C++, and the decode
	// or load it was part of fails with it.
	ErrCallbackPanic = errors.New("llama: callback panicked")

	// ErrInUse is returned when a Model is closed while one of its
	// contexts is open, or an Adapter while a context has it applied.
	// Close the contexts (or remove the adapter) first.
	ErrInUse = errors.New("llama: still in use")

	// ErrAdapterNotSet is returned when Context.RemoveAdapter is called for
	// an adapter that is not applied to the context.
	ErrAdapterNotSet = errors.New("llama: adapter is not set on this context")

	// ErrUnsupportedTemplate is returned when llama_chat_apply_template
	// does not recognise a chat template (it matches a fixed list of known
	// templates instead of running Jinja).
	ErrUnsupportedTemplate = errors.New("llama: unsupported chat template")

	// ErrBadVocab is returned when llama.cpp's tokenizer throws on a
	// model that loaded: its vocabulary lacks a token the tokenizer
	// needs (a byte token, for one). The file is corrupt or incomplete.
	ErrBadVocab = errors.New("llama: the model's vocabulary is incomplete or corrupt")
)

// Error is a failure reported by llama.cpp: the operation that failed, the
// code the C function returned, and, where llama.cpp logged why, its
// message. It wraps a sentinel when the code has a documented meaning.
type Error struct {
	Op     string // e.g. "Context.Decode"
	Code   int    // the C return code; 0 where the function returns a pointer
	Detail string // llama.cpp's last error log line, or a description
	Err    error  // sentinel, may be nil
}

func (e *Error) Error() string {
	msg := "llama: " + e.Op + " failed"
	if e.Code != 0 {
		msg += fmt.Sprintf(" (code %d)", e.Code)
	}
	if e.Err != nil {
		msg += ": " + trimPrefix(e.Err.Error())
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

func trimPrefix(s string) string {
	const p = "llama: "
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
