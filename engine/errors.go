package engine

import "errors"

// Sentinel errors of the Engine. Callers (the HTTP server among them)
// branch on them with errors.Is to pick a status code.
var (
	// ErrOverloaded is returned when a request arrives while every
	// sequence is busy and the admission queue is full. Retry later.
	ErrOverloaded = errors.New("engine: overloaded: every sequence is busy and the queue is full")

	// ErrPromptTooLong is returned when a prompt does not leave room for
	// one generated token in the context.
	ErrPromptTooLong = errors.New("engine: prompt does not fit the context")

	// ErrEmptyPrompt is returned when a request has neither a prompt nor
	// messages, or its text tokenizes to nothing.
	ErrEmptyPrompt = errors.New("engine: empty prompt")

	// ErrUnknownAdapter is returned when a request names an adapter the
	// Engine was not opened with.
	ErrUnknownAdapter = errors.New("engine: unknown adapter")

	// ErrAccessDenied is returned when a request's persona may not use the
	// adapter it names. The denial is also published on the bus and, with
	// an audit log, recorded there before the request is refused.
	ErrAccessDenied = errors.New("engine: access denied")

	// ErrEngineClosed is returned by Generate after Close or Shutdown
	// began, and ends streams that Close cut short.
	ErrEngineClosed = errors.New("engine: closed")

	// ErrBadRequest is returned for a request whose fields are out of
	// range (negative max tokens, a bad sampling parameter, …); the
	// message names the field.
	ErrBadRequest = errors.New("engine: bad request")
)
