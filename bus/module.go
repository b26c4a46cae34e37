package bus

import "context"

// Event is a message published under a colon-segmented event name.
type Event struct {
	Name    string
	Payload any
}

// Artifact is a message published under an artifact key
// ("<module>/<surface>.<event>").
type Artifact struct {
	Key     string
	Payload any
}

// Command is a request addressed to one module by name through
// Runtime.Send.
type Command struct {
	Name    string
	Payload any
}

// Module is a participant on the bus. Its handlers are called on the
// publishing goroutine with no bus lock held, possibly from several
// goroutines at once; a Module must be safe for concurrent use.
type Module interface {
	// Name identifies the module in a Runtime and in errors.
	Name() string
	// HandleEvent receives an event whose name matched a subscription.
	HandleEvent(ev Event) error
	// OnArtifact receives an artifact whose key matched a selector. It is
	// called synchronously by Publish and must be cheap and return.
	OnArtifact(a Artifact)
	// HandleCommand answers a command sent with Runtime.Send.
	HandleCommand(ctx context.Context, cmd Command) (any, error)
}

// Subscriber is implemented by a Module that declares what it listens to;
// Runtime.Register subscribes every selector and pattern it returns.
type Subscriber interface {
	ArtifactSelectors() []Selector
	EventPatterns() []string
}

// ModuleFuncs implements Module from optional functions, for callers that
// need only one handler. A nil Event or Artifact function ignores the
// message; a nil Command function answers with ErrNoHandler. It is as safe
// for concurrent use as the functions it holds. Both ModuleFuncs and
// *ModuleFuncs implement Module.
type ModuleFuncs struct {
	ModuleName string
	Event      func(Event) error
	Artifact   func(Artifact)
	Command    func(context.Context, Command) (any, error)
}

// Name returns m.ModuleName.
func (m ModuleFuncs) Name() string { return m.ModuleName }

// HandleEvent calls m.Event if it is set.
func (m ModuleFuncs) HandleEvent(ev Event) error {
	if m.Event == nil {
		return nil
	}
	return m.Event(ev)
}

// OnArtifact calls m.Artifact if it is set.
func (m ModuleFuncs) OnArtifact(a Artifact) {
	if m.Artifact != nil {
		m.Artifact(a)
	}
}

// HandleCommand calls m.Command, or returns ErrNoHandler if it is nil.
func (m ModuleFuncs) HandleCommand(ctx context.Context, cmd Command) (any, error) {
	if m.Command == nil {
		return nil, &HandlerError{Module: m.ModuleName, Key: cmd.Name, Err: ErrNoHandler}
	}
	return m.Command(ctx, cmd)
}
