package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/strata-llm/strata/bus"
)

// RecordedKeys maps each artifact key the Recorder subscribes to onto the
// kind of entry it records. Only genome/working_set.access_denied is a
// canonical key of DESIGN.md; the other three are defined in bus for their
// future publishers:
//
//	genome/working_set.access_denied  access-denied
//	inference/llm.refusal             refusal
//	governor/policy.override          governor-override
//	federation/policy.drift           federation-policy-drift
var RecordedKeys = map[string]Kind{
	bus.KeyAccessDenied:          KindAccessDenied,
	bus.KeyRefusal:               KindRefusal,
	bus.KeyGovernorOverride:      KindGovernorOverride,
	bus.KeyFederationPolicyDrift: KindFederationPolicyDrift,
}

// RecorderName is the Recorder's module name.
const RecorderName = "audit"

// Commands the Recorder answers through bus.Runtime.Send.
const (
	CmdHead       = "audit.head"       // returns Head
	CmdCheckpoint = "audit.checkpoint" // returns a Checkpoint (needs a Signer)
	CmdSync       = "audit.sync"       // fsyncs the log
)

// Head is the answer to CmdHead.
type Head struct {
	Seq       uint64 `json:"seq"`
	ChainHash Hash   `json:"chainHash"`
}

// EntryRecorded is the payload the Recorder publishes under
// bus.KeyAuditEntryRecorded after each entry is appended. In process it is
// this Go value; bus.Decode[EntryRecorded] also reads its JSON form.
type EntryRecorded struct {
	Seq         uint64 `json:"seq"`
	TimestampMs int64  `json:"timestampMs"`
	Kind        Kind   `json:"kind"`
	ChainHash   Hash   `json:"chainHash"`
	SourceKey   string `json:"sourceKey"`
}

// Recorder is a bus module that appends an entry for every artifact
// published under one of RecordedKeys and then publishes EntryRecorded. It
// is safe for concurrent use.
//
// OnArtifact appends synchronously, so the entry is in the file (and, with
// SyncEveryEntry, on disk) before Publish returns. To keep OnArtifact cheap
// as the bus requires, open the Log with SyncBatched: an append is then one
// write(2). A failed append cannot be returned through OnArtifact; it is
// counted and kept for Err.
type Recorder struct {
	log *Log
	bus *bus.MessageBus

	failures atomic.Uint64
	mu       sync.Mutex
	lastErr  error
}

// NewRecorder returns a Recorder appending to l and publishing on b.
// Subscribe it with bus.Runtime.Register.
func NewRecorder(l *Log, b *bus.MessageBus) *Recorder { return &Recorder{log: l, bus: b} }

// Name returns RecorderName.
func (r *Recorder) Name() string { return RecorderName }

// ArtifactSelectors returns an Exact selector for each of RecordedKeys.
func (r *Recorder) ArtifactSelectors() []bus.Selector {
	return []bus.Selector{
		bus.Exact(bus.KeyAccessDenied),
		bus.Exact(bus.KeyRefusal),
		bus.Exact(bus.KeyGovernorOverride),
		bus.Exact(bus.KeyFederationPolicyDrift),
	}
}

// EventPatterns returns none: the Recorder listens to artifacts only.
func (r *Recorder) EventPatterns() []string { return nil }

// HandleEvent ignores events.
func (r *Recorder) HandleEvent(bus.Event) error { return nil }

// OnArtifact appends the artifact's payload as an entry of the key's kind.
func (r *Recorder) OnArtifact(a bus.Artifact) {
	kind, ok := RecordedKeys[a.Key]
	if !ok {
		r.fail(fmt.Errorf("audit: recorder got unsubscribed key %q", a.Key))
		return
	}
	e, err := r.log.Append(kind, a.Payload)
	if err != nil {
		r.fail(err)
		return
	}
	// A failure of a downstream subscriber is its own; the entry stands.
	_ = r.bus.Publish(bus.KeyAuditEntryRecorded, EntryRecorded{
		Seq: e.Seq, TimestampMs: e.TimestampMs, Kind: e.Kind, ChainHash: e.ChainHash, SourceKey: a.Key,
	})
}

func (r *Recorder) fail(err error) {
	r.failures.Add(1)
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
}

// Failures returns how many artifacts could not be recorded.
func (r *Recorder) Failures() uint64 { return r.failures.Load() }

// Err returns the most recent recording failure, or nil.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// HandleCommand answers CmdHead, CmdCheckpoint and CmdSync.
func (r *Recorder) HandleCommand(_ context.Context, cmd bus.Command) (any, error) {
	switch cmd.Name {
	case CmdHead:
		seq, h := r.log.Head()
		return Head{Seq: seq, ChainHash: h}, nil
	case CmdCheckpoint:
		return r.log.WriteCheckpoint()
	case CmdSync:
		return nil, r.log.Sync()
	}
	return nil, fmt.Errorf("audit: unknown command %q: %w", cmd.Name, bus.ErrNoHandler)
}
