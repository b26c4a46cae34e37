package bus

import (
	"errors"
	"fmt"
)

// Errors that callers may branch on with errors.Is.
var (
	// ErrInvalidKey is returned when a published key is neither a valid
	// event name nor a valid artifact key, or when an Exact selector names an
	// invalid artifact key.
	ErrInvalidKey = errors.New("bus: invalid key")

	// ErrInvalidPattern is returned when an event subscription pattern is
	// malformed: an empty segment, a bad character, or ">" not last.
	ErrInvalidPattern = errors.New("bus: invalid pattern")

	// ErrInvalidSelector is returned when a Selector is the zero value or a
	// Prefix cannot be the start of any valid artifact key.
	ErrInvalidSelector = errors.New("bus: invalid selector")

	// ErrNilModule is returned when a nil Module is subscribed or registered.
	ErrNilModule = errors.New("bus: nil module")

	// ErrDuplicateModule is returned when Runtime.Register is given a module
	// whose name is already registered.
	ErrDuplicateModule = errors.New("bus: duplicate module name")

	// ErrUnknownModule is returned when Runtime.Unregister or Runtime.Send
	// names a module that is not registered.
	ErrUnknownModule = errors.New("bus: unknown module")

	// ErrEmptyModuleName is returned when a module's Name is empty.
	ErrEmptyModuleName = errors.New("bus: empty module name")

	// ErrHandlerPanic is returned (wrapped in a *HandlerError) when a
	// handler panicked; the panic was recovered.
	ErrHandlerPanic = errors.New("bus: handler panicked")

	// ErrNoHandler is returned when a ModuleFuncs has no function for the
	// command it was sent.
	ErrNoHandler = errors.New("bus: no handler")

	// ErrPayloadType is returned (wrapped in a *PayloadError) when Decode
	// cannot turn a payload into the requested type.
	ErrPayloadType = errors.New("bus: payload type")
)

// KeyError describes an invalid key, pattern or selector: what kind of
// string it was, the string, the byte offset of the problem and why.
type KeyError struct {
	What   string // "event name", "artifact key", "pattern" or "prefix"
	Key    string
	Pos    int // byte offset of the offending character or segment
	Reason string
	Err    error // ErrInvalidKey, ErrInvalidPattern or ErrInvalidSelector
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("bus: invalid %s %q at byte %d: %s", e.What, e.Key, e.Pos, e.Reason)
}

// Unwrap returns the sentinel for the kind of string that was invalid.
func (e *KeyError) Unwrap() error { return e.Err }

// HandlerError reports a handler that returned an error or panicked while a
// message was delivered.
type HandlerError struct {
	Module string // the module's Name
	Key    string // the event name, artifact key or command name
	Panic  any    // the recovered value, or nil when the handler returned Err
	Err    error  // the returned error, or nil for a panic
}

func (e *HandlerError) Error() string {
	if e.Panic != nil {
		return fmt.Sprintf("bus: handler %q panicked on %q: %v", e.Module, e.Key, e.Panic)
	}
	return fmt.Sprintf("bus: handler %q failed on %q: %v", e.Module, e.Key, e.Err)
}

// Unwrap returns ErrHandlerPanic for a panic and the handler's error
// otherwise.
func (e *HandlerError) Unwrap() error {
	if e.Panic != nil {
		return ErrHandlerPanic
	}
	return e.Err
}

// PayloadError reports a payload that Decode could not convert.
type PayloadError struct {
	Want string // the requested Go type
	Got  string // the payload's dynamic type
	Err  error  // the JSON error, if the payload was JSON
}

func (e *PayloadError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("bus: decode %s from %s: %v", e.Want, e.Got, e.Err)
	}
	return fmt.Sprintf("bus: cannot decode %s from payload of type %s", e.Want, e.Got)
}

// Unwrap returns ErrPayloadType and the underlying JSON error, if any.
func (e *PayloadError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrPayloadType, e.Err}
	}
	return []error{ErrPayloadType}
}
