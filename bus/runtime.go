package bus

import (
	"context"
	"slices"
	"sync"
)

// Runtime is a registry of named modules on one bus. It is safe for
// concurrent use; Register, Unregister and Send may be called from
// handlers. Lock order: Runtime.mu before MessageBus.mu.
type Runtime struct {
	bus *MessageBus

	mu   sync.Mutex
	mods map[string]*registration
}

type registration struct {
	module Module
	subs   []*Subscription
}

// NewRuntime returns a Runtime that subscribes modules on b.
func NewRuntime(b *MessageBus) *Runtime {
	return &Runtime{bus: b, mods: make(map[string]*registration)}
}

// Bus returns the bus the runtime subscribes on.
func (r *Runtime) Bus() *MessageBus { return r.bus }

// Register adds m under m.Name(). If m implements Subscriber, every artifact
// selector and event pattern it declares is subscribed; a message that
// matches several of them is delivered to m once. All declarations are
// validated first: on any error nothing is registered. A name already
// registered is ErrDuplicateModule.
func (r *Runtime) Register(m Module) error {
	if m == nil {
		return ErrNilModule
	}
	name := m.Name()
	if name == "" {
		return ErrEmptyModuleName
	}
	var sels []Selector
	var pats []string
	if s, ok := m.(Subscriber); ok {
		sels, pats = s.ArtifactSelectors(), s.EventPatterns()
	}
	for _, sel := range sels {
		if err := sel.Validate(); err != nil {
			return err
		}
	}
	for _, p := range pats {
		if err := ValidPattern(p); err != nil {
			return err
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.mods[name]; dup {
		return &KeyError{What: "module name", Key: name, Reason: "already registered", Err: ErrDuplicateModule}
	}
	reg := &registration{module: m}
	owner := r.bus.newOwner()
	for _, sel := range sels {
		reg.subs = append(reg.subs, r.bus.subscribe(false, sel.s, sel.kind, m, owner))
	}
	for _, p := range pats {
		reg.subs = append(reg.subs, r.bus.subscribe(true, p, selNone, m, owner))
	}
	r.mods[name] = reg
	return nil
}

// Unregister removes the module registered under name and every
// subscription Register made for it.
func (r *Runtime) Unregister(name string) error {
	r.mu.Lock()
	reg, ok := r.mods[name]
	delete(r.mods, name)
	r.mu.Unlock()
	if !ok {
		return &KeyError{What: "module name", Key: name, Reason: "not registered", Err: ErrUnknownModule}
	}
	for _, s := range reg.subs {
		s.Unsubscribe()
	}
	return nil
}

// Module returns the module registered under name.
func (r *Runtime) Module(name string) (Module, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg, ok := r.mods[name]
	if !ok {
		return nil, false
	}
	return reg.module, true
}

// Modules returns the registered names, sorted.
func (r *Runtime) Modules() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.mods))
	for n := range r.mods {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Send calls HandleCommand on the module registered under name, with no
// lock held. A panic in the handler is recovered and returned as a
// *HandlerError wrapping ErrHandlerPanic.
func (r *Runtime) Send(ctx context.Context, name string, cmd Command) (res any, err error) {
	m, ok := r.Module(name)
	if !ok {
		return nil, &KeyError{What: "module name", Key: name, Reason: "not registered", Err: ErrUnknownModule}
	}
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, r.bus.panicked(m, cmd.Name, v)
		}
	}()
	return m.HandleCommand(ctx, cmd)
}
