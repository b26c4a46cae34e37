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
//
// The bus path records only what reaches the bus, and a publisher may drop
// events on the way: genome's outbox drops them when its bounded queue is
// full, does not queue them while no publisher is set, and loses what is
// queued when the process dies. Access denials must not be lost, so
// RecordDenial takes them directly from the code that denies: the entry is
// written before it returns, and a failure is returned to that code. Build
// the Recorder WithDirectDenials when denials come that way, so that the
// same denial, also published on the bus, is not recorded twice.
type Recorder struct {
	log    *Log
	bus    *bus.MessageBus
	direct bool // denials come through RecordDenial only

	failures atomic.Uint64
	mu       sync.Mutex
	lastErr  error
}

// RecorderOption configures a Recorder.
type RecorderOption func(*Recorder)

// WithDirectDenials makes the Recorder take access denials only through
// RecordDenial: it neither subscribes to nor records bus.KeyAccessDenied
// artifacts, which the denier may still publish for other subscribers.
func WithDirectDenials() RecorderOption { return func(r *Recorder) { r.direct = true } }

// NewRecorder returns a Recorder appending to l and publishing on b.
// Subscribe it with bus.Runtime.Register. b may be nil for a Recorder used
// through Record and RecordDenial only; nothing is then announced.
func NewRecorder(l *Log, b *bus.MessageBus, opts ...RecorderOption) *Recorder {
	r := &Recorder{log: l, bus: b}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Name returns RecorderName.
func (r *Recorder) Name() string { return RecorderName }

// ArtifactSelectors returns an Exact selector for each of RecordedKeys,
// less bus.KeyAccessDenied WithDirectDenials.
func (r *Recorder) ArtifactSelectors() []bus.Selector {
	sels := make([]bus.Selector, 0, 4)
	if !r.direct {
		sels = append(sels, bus.Exact(bus.KeyAccessDenied))
	}
	return append(sels,
		bus.Exact(bus.KeyRefusal),
		bus.Exact(bus.KeyGovernorOverride),
		bus.Exact(bus.KeyFederationPolicyDrift),
	)
}

// EventPatterns returns none: the Recorder listens to artifacts only.
func (r *Recorder) EventPatterns() []string { return nil }

// HandleEvent ignores events.
func (r *Recorder) HandleEvent(bus.Event) error { return nil }

// OnArtifact appends the artifact's payload as an entry of the key's kind.
// WithDirectDenials it ignores bus.KeyAccessDenied: those come through
// RecordDenial.
func (r *Recorder) OnArtifact(a bus.Artifact) {
	if r.direct && a.Key == bus.KeyAccessDenied {
		return
	}
	r.Record(a.Key, a.Payload) // a failure is counted and kept for Err
}

// Record appends payload as an entry of the kind RecordedKeys gives key,
// and announces it under bus.KeyAuditEntryRecorded. Unlike OnArtifact it
// returns the entry, or the error: the entry is in the file (and, with
// SyncEveryEntry, on disk) when Record returns nil. A failure is also
// counted and kept for Err. It blocks while other appends hold the log;
// the announcements of concurrent Records may arrive out of seq order.
func (r *Recorder) Record(key string, payload any) (Entry, error) {
	kind, ok := RecordedKeys[key]
	if !ok {
		err := fmt.Errorf("%w: %q", ErrNotRecordedKey, key)
		r.fail(err)
		return Entry{}, err
	}
	e, err := r.log.Append(kind, payload)
	if err != nil {
		r.fail(err)
		return Entry{}, err
	}
	if r.bus != nil {
		// A failure of a downstream subscriber is its own; the entry stands.
		_ = r.bus.Publish(bus.KeyAuditEntryRecorded, EntryRecorded{
			Seq: e.Seq, TimestampMs: e.TimestampMs, Kind: e.Kind, ChainHash: e.ChainHash, SourceKey: key,
		})
	}
	return e, nil
}

// RecordDenial records an access denial (bus.KeyAccessDenied, kind
// access-denied) synchronously: Record for denials. It is the path on
// which no denial is dropped; call it from the code that denies, before
// the denial error goes back to the caller, and pass on its error, which
// means the denial is not in the log. It may wait for an fsync, so call it
// outside the caller's own locks. payload is encoded with encoding/json (a
// genome.AccessDenied as it is).
func (r *Recorder) RecordDenial(payload any) (Entry, error) {
	return r.Record(bus.KeyAccessDenied, payload)
}

func (r *Recorder) fail(err error) {
	r.failures.Add(1)
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
}

// Failures returns how many artifacts, and calls of Record and
// RecordDenial, could not be recorded.
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
