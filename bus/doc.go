// Package bus is Strata's in-process message bus.
//
// A MessageBus carries two kinds of message on one publish path:
//
//   - Events have colon-segmented names such as "data:users:created".
//     Subscribe takes a pattern in which "*" matches exactly one segment and
//     ">" (last only) matches one or more trailing segments. Events are
//     delivered to Module.HandleEvent.
//   - Artifacts have keys of the form "<module>/<surface>.<event>", such as
//     "genome/working_set.page_fault". SubscribeArtifact takes a Selector,
//     Exact(key) or Prefix(p), which compares the whole key string; artifact
//     keys never go through the colon matcher. Artifacts are delivered to
//     Module.OnArtifact, which must be cheap and return.
//
// The two grammars are disjoint: an event name never contains '/' or '.',
// and an artifact key always contains exactly one '/'. Publish therefore
// decides from the shape of the key which subscriptions can match: a
// colon-name-shaped key is matched against event patterns only, an
// artifact-shaped key against artifact selectors only, and any other key is
// rejected with an error wrapping ErrInvalidKey that says which rule it broke
// and where.
//
// Publish collects the matching subscriptions, releases every lock, and then
// calls the handlers synchronously on the publishing goroutine, so a handler
// may publish, subscribe or unsubscribe without deadlock. A handler that
// panics is recovered; the other subscribers still receive the message, the
// panic is counted in Stats, and Publish returns a *HandlerError.
//
// Matching follows the design of nats-server's sublist: event patterns live
// in a token trie with "*" and ">" branches at every level, prefix selectors
// in a radix tree, exact selectors in a map, and the result of matching a
// key is kept in a bounded cache that is cleared whenever a subscription
// changes. A cache hit performs no allocation.
//
// Runtime is a registry of named modules on top of a bus: Register routes
// every selector and pattern a module declares (see Subscriber), Unregister
// removes them all, and Send delivers a Command to a module by name.
//
// Payloads are Go values in process. Topic, PublishJSON and Decode give typed
// publishing and decoding, with JSON as the wire form for anything that
// crosses a process boundary.
package bus
