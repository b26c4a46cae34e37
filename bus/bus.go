package bus

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// cacheMax bounds the match cache. When it is full, a quarter of the
// entries, chosen by map iteration order, are dropped.
const cacheMax = 1024

// MessageBus routes events and artifacts to subscribed modules. It is safe
// for concurrent use. Handlers run on the publishing goroutine with no lock
// held.
type MessageBus struct {
	// mu guards everything below it. Publish holds it for reading while it
	// matches and for writing only to fill the cache; handlers never run
	// under it.
	mu       sync.RWMutex
	events   level                      // event-pattern trie
	exact    map[string][]*Subscription // Exact selectors
	prefixes rnode                      // Prefix selectors
	cache    map[string]*matchResult    // key -> result, at most cacheMax
	gen      uint64                     // bumped on every subscription change

	nextID     atomic.Uint64
	published  atomic.Uint64
	cacheMiss  atomic.Uint64
	panics     atomic.Uint64
	handlerErr atomic.Uint64
}

// matchResult is the immutable outcome of matching one key: the
// subscriptions to deliver to, in subscription order, one per owner.
type matchResult struct {
	artifact bool
	subs     []*Subscription
}

// New returns an empty bus.
func New() *MessageBus {
	return &MessageBus{
		exact: make(map[string][]*Subscription),
		cache: make(map[string]*matchResult),
	}
}

// Stats are counters since the bus was created.
type Stats struct {
	Published     uint64 // Publish calls with a valid key
	CacheMisses   uint64 // publishes that had to walk the matchers
	Panics        uint64 // handler panics recovered
	HandlerErrors uint64 // errors returned by HandleEvent
	CacheEntries  int    // keys in the match cache now
}

// Stats returns the bus counters.
func (b *MessageBus) Stats() Stats {
	b.mu.RLock()
	n := len(b.cache)
	b.mu.RUnlock()
	return Stats{
		Published:     b.published.Load(),
		CacheMisses:   b.cacheMiss.Load(),
		Panics:        b.panics.Load(),
		HandlerErrors: b.handlerErr.Load(),
		CacheEntries:  n,
	}
}

// selKind says how a Selector compares keys.
type selKind uint8

const (
	selNone selKind = iota
	selExact
	selPrefix
)

// Selector chooses artifact keys by comparing the whole key string. The
// zero Selector is invalid.
type Selector struct {
	kind selKind
	s    string
}

// Exact selects the one artifact key equal to key.
func Exact(key string) Selector { return Selector{kind: selExact, s: key} }

// Prefix selects every artifact key that starts with p, byte for byte:
// Prefix("cognition/") matches "cognition/recall.hit" but not
// "cognitionx/a.b". Prefix("") selects every artifact key.
func Prefix(p string) Selector { return Selector{kind: selPrefix, s: p} }

// String returns the selector as Exact("…") or Prefix("…").
func (s Selector) String() string {
	switch s.kind {
	case selExact:
		return `Exact("` + s.s + `")`
	case selPrefix:
		return `Prefix("` + s.s + `")`
	}
	return "Selector{}"
}

// Validate returns an error wrapping ErrInvalidKey (Exact) or
// ErrInvalidSelector (Prefix, zero value) if s can never match.
func (s Selector) Validate() error {
	switch s.kind {
	case selExact:
		return checkArtifact(s.s, true, ErrInvalidKey)
	case selPrefix:
		return checkArtifact(s.s, false, ErrInvalidSelector)
	}
	return &KeyError{What: "prefix", Reason: "zero Selector; use Exact or Prefix", Err: ErrInvalidSelector}
}

// Subscription is one registered interest. It is safe for concurrent use.
type Subscription struct {
	bus    *MessageBus
	id     uint64 // subscription order
	owner  uint64 // subscriptions with one owner are delivered once per message
	module Module
	event  bool
	key    string // pattern, exact key or prefix
	sel    selKind
	gone   atomic.Bool
}

// Unsubscribe removes the subscription. A message published after
// Unsubscribe returns is not delivered to it; one whose publish had already
// collected it may still be. Unsubscribe is idempotent and may be called
// from a handler.
func (s *Subscription) Unsubscribe() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.gone.Swap(true) {
		return
	}
	switch {
	case s.event:
		b.events.remove(s.key, s)
	case s.sel == selExact:
		subs, _ := removeSub(b.exact[s.key], s)
		if len(subs) == 0 {
			delete(b.exact, s.key)
		} else {
			b.exact[s.key] = subs
		}
	default:
		b.prefixes.remove(s.key, s)
	}
	b.changed()
}

// changed invalidates the match cache. Caller holds b.mu.
func (b *MessageBus) changed() {
	b.gen++
	clear(b.cache)
}

// Subscribe delivers every event whose name matches pattern to
// m.HandleEvent. Patterns are colon-segmented; "*" matches exactly one
// segment and ">", last only, one or more trailing segments.
func (b *MessageBus) Subscribe(pattern string, m Module) (*Subscription, error) {
	if err := ValidPattern(pattern); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, ErrNilModule
	}
	return b.subscribe(true, pattern, selNone, m, 0), nil
}

// SubscribeArtifact delivers every artifact whose key sel selects to
// m.OnArtifact.
func (b *MessageBus) SubscribeArtifact(sel Selector, m Module) (*Subscription, error) {
	if err := sel.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, ErrNilModule
	}
	return b.subscribe(false, sel.s, sel.kind, m, 0), nil
}

// subscribe adds a validated subscription. owner 0 means a fresh owner.
func (b *MessageBus) subscribe(event bool, key string, kind selKind, m Module, owner uint64) *Subscription {
	id := b.nextID.Add(1)
	if owner == 0 {
		owner = id
	}
	s := &Subscription{bus: b, id: id, owner: owner, module: m, event: event, key: key, sel: kind}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case event:
		b.events.insert(key, s)
	case kind == selExact:
		b.exact[key] = append(b.exact[key], s)
	default:
		b.prefixes.insert(key, s)
	}
	b.changed()
	return s
}

// newOwner returns an owner id for a group of subscriptions that must be
// delivered once per message.
func (b *MessageBus) newOwner() uint64 { return b.nextID.Add(1) }

// Publish delivers payload to every subscription matching key and returns
// when all handlers have returned. A key containing '/' must be a valid
// artifact key and is matched against artifact selectors only; any other
// key must be a valid event name and is matched against event patterns
// only. An invalid key is an error wrapping ErrInvalidKey and nothing is
// delivered. If handlers panicked (recovered) or HandleEvent returned
// errors, every other subscriber still receives the message and Publish
// returns the *HandlerError values, joined.
func (b *MessageBus) Publish(key string, payload any) error {
	b.mu.RLock()
	r := b.cache[key]
	b.mu.RUnlock()
	if r == nil {
		var err error
		if r, err = b.match(key); err != nil {
			return err
		}
	}
	b.published.Add(1)
	if r.artifact {
		return b.deliverArtifacts(r.subs, key, payload)
	}
	return b.deliverEvents(r.subs, key, payload)
}

// match validates key, walks the matchers and caches the result.
func (b *MessageBus) match(key string) (*matchResult, error) {
	shape, err := classifyKey(key)
	if err != nil {
		return nil, err
	}
	b.cacheMiss.Add(1)
	r := &matchResult{artifact: shape == shapeArtifact}
	b.mu.RLock()
	gen := b.gen
	if r.artifact {
		r.subs = append(r.subs, b.exact[key]...)
		r.subs = b.prefixes.match(key, r.subs)
	} else {
		var buf [maxStackTokens]string
		r.subs = b.events.match(tokenize(buf[:0], key), nil)
	}
	b.mu.RUnlock()
	r.subs = dedupe(r.subs)

	b.mu.Lock()
	if b.gen == gen {
		if len(b.cache) >= cacheMax {
			drop := cacheMax / 4
			for k := range b.cache {
				delete(b.cache, k)
				if drop--; drop == 0 {
					break
				}
			}
		}
		b.cache[key] = r
	}
	b.mu.Unlock()
	return r, nil
}

// dedupe sorts subs into subscription order and keeps the first of each
// owner, so a module registered with overlapping selectors gets a message
// once.
func dedupe(subs []*Subscription) []*Subscription {
	if len(subs) < 2 {
		return subs
	}
	slices.SortFunc(subs, func(a, b *Subscription) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	seen := make(map[uint64]struct{}, len(subs))
	out := subs[:0]
	for _, s := range subs {
		if _, dup := seen[s.owner]; dup {
			continue
		}
		seen[s.owner] = struct{}{}
		out = append(out, s)
	}
	return out
}

func (b *MessageBus) deliverArtifacts(subs []*Subscription, key string, payload any) error {
	var errs []error
	for _, s := range subs {
		if s.gone.Load() {
			continue
		}
		if err := b.callArtifact(s, Artifact{Key: key, Payload: payload}); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrs(errs)
}

func (b *MessageBus) deliverEvents(subs []*Subscription, key string, payload any) error {
	var errs []error
	for _, s := range subs {
		if s.gone.Load() {
			continue
		}
		if err := b.callEvent(s, Event{Name: key, Payload: payload}); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrs(errs)
}

func (b *MessageBus) callArtifact(s *Subscription, a Artifact) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = b.panicked(s.module, a.Key, v)
		}
	}()
	s.module.OnArtifact(a)
	return nil
}

func (b *MessageBus) callEvent(s *Subscription, ev Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = b.panicked(s.module, ev.Name, v)
		}
	}()
	if herr := s.module.HandleEvent(ev); herr != nil {
		b.handlerErr.Add(1)
		return &HandlerError{Module: s.module.Name(), Key: ev.Name, Err: herr}
	}
	return nil
}

func (b *MessageBus) panicked(m Module, key string, v any) error {
	b.panics.Add(1)
	return &HandlerError{Module: safeName(m), Key: key, Panic: v}
}

// safeName returns m.Name(), or "?" if Name itself panics.
func safeName(m Module) (name string) {
	defer func() {
		if recover() != nil {
			name = "?"
		}
	}()
	return m.Name()
}

func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
