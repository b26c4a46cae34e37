package genome

import (
	"fmt"

	"github.com/strata-llm/strata/bus"
)

// workingSetPrefix selects the three genome working-set keys.
const workingSetPrefix = "genome/working_set."

// AttachBus publishes the manager's page faults, evictions and access
// denials on b under the canonical keys. Faults and evictions never block
// the caller (see events): they go through a bounded queue drained by one
// goroutine. Denials are published by the denied call itself, before it
// returns, and are never dropped.
func (m *Local) AttachBus(b *bus.MessageBus) { m.SetPublisher(b) }

// SubscribeWorkingSet subscribes mod to all three working-set keys with
// one prefix selector. mod.OnArtifact receives PageFault, EvictionRecord
// and AccessDenied values.
func SubscribeWorkingSet(b *bus.MessageBus, mod bus.Module) (*bus.Subscription, error) {
	return b.SubscribeArtifact(bus.Prefix(workingSetPrefix), mod)
}

// SubscribeKey subscribes mod to one of KeyPageFault, KeyEviction or
// KeyAccessDenied.
func SubscribeKey(b *bus.MessageBus, key string, mod bus.Module) (*bus.Subscription, error) {
	switch key {
	case KeyPageFault, KeyEviction, KeyAccessDenied:
		return b.SubscribeArtifact(bus.Exact(key), mod)
	}
	return nil, fmt.Errorf("genome: subscribe %q: not a working-set key (want %s, %s or %s)", key, KeyPageFault, KeyEviction, KeyAccessDenied)
}
