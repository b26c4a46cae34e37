package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/strata-llm/strata/bus"
)

type denial struct {
	Module   string `json:"module"`
	Artifact string `json:"artifact"`
}

func TestRecorderRecordsAndAnnounces(t *testing.T) {
	_, priv := testKey(t)
	path := filepath.Join(t.TempDir(), "a.log")
	l := mustOpen(t, path, &Options{Sync: SyncBatched, Signer: priv})
	b := bus.New()
	rt := bus.NewRuntime(b)
	rec := NewRecorder(l, b)
	if err := rt.Register(rec); err != nil {
		t.Fatal(err)
	}
	var announced []EntryRecorded
	var decodeErrs []error
	if _, err := b.SubscribeArtifact(bus.Exact(bus.KeyAuditEntryRecorded), bus.ModuleFuncs{
		ModuleName: "watcher",
		Artifact: func(a bus.Artifact) {
			er, err := bus.Decode[EntryRecorded](a.Payload)
			announced = append(announced, er)
			decodeErrs = append(decodeErrs, err)
		},
	}); err != nil {
		t.Fatal(err)
	}

	publishes := []struct {
		key  string
		json bool
		kind Kind
	}{
		{bus.KeyAccessDenied, false, KindAccessDenied},
		{bus.KeyRefusal, true, KindRefusal},
		{bus.KeyGovernorOverride, false, KindGovernorOverride},
		{bus.KeyFederationPolicyDrift, true, KindFederationPolicyDrift},
		{bus.KeyPageFault, false, ""}, // not audited
	}
	for _, p := range publishes {
		v := denial{Module: "engine", Artifact: p.key}
		var err error
		if p.json {
			err = bus.PublishJSON(b, p.key, v)
		} else {
			err = b.Publish(p.key, v)
		}
		if err != nil {
			t.Fatalf("Publish(%s): %v", p.key, err)
		}
	}
	if err := errors.Join(decodeErrs...); err != nil {
		t.Fatal(err)
	}
	if len(announced) != 4 {
		t.Fatalf("got %d announcements, want 4", len(announced))
	}
	for i, a := range announced {
		if a.Seq != uint64(i+1) || a.Kind != publishes[i].kind || a.SourceKey != publishes[i].key {
			t.Errorf("announcement %d: got %+v, want seq %d kind %s from %s", i, a, i+1, publishes[i].kind, publishes[i].key)
		}
	}

	res, err := rt.Send(context.Background(), RecorderName, bus.Command{Name: CmdHead})
	if h, ok := res.(Head); err != nil || !ok || h.Seq != 4 || h.ChainHash != announced[3].ChainHash {
		t.Errorf("CmdHead: got %v, %v, want Head{4, %s}", res, err, announced[3].ChainHash)
	}
	res, err = rt.Send(context.Background(), RecorderName, bus.Command{Name: CmdCheckpoint})
	if cp, ok := res.(Checkpoint); err != nil || !ok || cp.Seq != 4 || cp.Verify(priv.Public().(ed25519.PublicKey)) != nil {
		t.Errorf("CmdCheckpoint: got %v, %v, want a valid checkpoint at seq 4", res, err)
	}
	if _, err := rt.Send(context.Background(), RecorderName, bus.Command{Name: CmdSync}); err != nil {
		t.Errorf("CmdSync: %v", err)
	}
	if _, err := rt.Send(context.Background(), RecorderName, bus.Command{Name: "nope"}); !errors.Is(err, bus.ErrNoHandler) {
		t.Errorf("unknown command: got %v, want ErrNoHandler", err)
	}

	// A payload that cannot be recorded is counted, not lost silently.
	if err := b.Publish(bus.KeyRefusal, func() {}); err != nil {
		t.Fatal(err)
	}
	if rec.Failures() != 1 || !errors.Is(rec.Err(), ErrInvalidPayload) {
		t.Errorf("got %d failures, last %v, want 1, ErrInvalidPayload", rec.Failures(), rec.Err())
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := Verify(path)
	if err != nil || sum.Entries != 4 {
		t.Fatalf("Verify: got %d entries, %v, want 4, nil", sum.Entries, err)
	}
	data, _ := os.ReadFile(path)
	lines := splitLines(data)
	var e Entry
	if reason := parseLine([]byte(lines[0][:len(lines[0])-1]), &e); reason != "" {
		t.Fatal(reason)
	}
	if want := `{"module":"engine","artifact":"genome/working_set.access_denied"}`; string(e.Payload) != want {
		t.Errorf("payload: got %s, want %s", e.Payload, want)
	}
}

// RecordDenial writes a denial before it returns and hands back any
// failure; WithDirectDenials keeps the bus copy of the same denial out.
func TestRecordDenialIsSynchronous(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l := mustOpen(t, path, nil)
	b := bus.New()
	rec := NewRecorder(l, b, WithDirectDenials())
	if err := bus.NewRuntime(b).Register(rec); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // concurrent RecordDenials announce concurrently
	var announced []EntryRecorded
	if _, err := b.SubscribeArtifact(bus.Exact(bus.KeyAuditEntryRecorded), bus.ModuleFuncs{
		ModuleName: "watcher",
		Artifact: func(a bus.Artifact) {
			mu.Lock()
			announced = append(announced, a.Payload.(EntryRecorded))
			mu.Unlock()
		},
	}); err != nil {
		t.Fatal(err)
	}

	e, err := rec.RecordDenial(denial{Module: "genome", Artifact: "adapter-a"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 1 || e.Kind != KindAccessDenied || string(e.Payload) != `{"module":"genome","artifact":"adapter-a"}` {
		t.Errorf("got %+v, want seq 1 access-denied with the denial as payload", e)
	}
	// In the file already, not queued somewhere.
	if sum, err := Verify(path); err != nil || sum.LastSeq != 1 || sum.LastHash != e.ChainHash {
		t.Errorf("Verify right after RecordDenial: got %+v, %v, want seq 1 ending %s", sum, err, e.ChainHash)
	}
	if len(announced) != 1 || announced[0].Seq != 1 || announced[0].SourceKey != bus.KeyAccessDenied {
		t.Errorf("got announcements %+v, want one of seq 1 from %s", announced, bus.KeyAccessDenied)
	}

	// The denier may still publish the denial for others; it is not
	// recorded a second time. Other keys still come through the bus.
	if err := b.Publish(bus.KeyAccessDenied, denial{Module: "genome"}); err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Head(); seq != 1 {
		t.Errorf("after a bus denial: got seq %d, want 1", seq)
	}
	if err := b.Publish(bus.KeyRefusal, denial{Module: "engine"}); err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Head(); seq != 2 {
		t.Errorf("after a bus refusal: got seq %d, want 2", seq)
	}

	// Many deniers at once: every denial is recorded.
	const goroutines, each = 8, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if _, err := rec.RecordDenial(map[string]int{"g": g, "i": i}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if seq, _ := l.Head(); seq != 2+goroutines*each {
		t.Errorf("after concurrent denials: got seq %d, want %d", seq, 2+goroutines*each)
	}
	if len(announced) != 2+goroutines*each {
		t.Errorf("got %d announcements, want %d", len(announced), 2+goroutines*each)
	}

	// A failure comes back to the denier, and is counted.
	l.Close()
	if _, err := rec.RecordDenial(denial{}); !errors.Is(err, ErrClosed) {
		t.Errorf("RecordDenial on a closed log: got %v, want ErrClosed", err)
	}
	if _, err := rec.Record(bus.KeyPageFault, nil); !errors.Is(err, ErrNotRecordedKey) {
		t.Errorf("Record of %s: got %v, want ErrNotRecordedKey", bus.KeyPageFault, err)
	}
	if rec.Failures() != 2 {
		t.Errorf("got %d failures, want 2", rec.Failures())
	}
}

func TestRecorderSelectors(t *testing.T) {
	tests := []struct {
		name string
		opts []RecorderOption
		want []string
	}{
		{"bus", nil, []string{bus.KeyAccessDenied, bus.KeyRefusal, bus.KeyGovernorOverride, bus.KeyFederationPolicyDrift}},
		{"direct denials", []RecorderOption{WithDirectDenials()}, []string{bus.KeyRefusal, bus.KeyGovernorOverride, bus.KeyFederationPolicyDrift}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewRecorder(nil, nil, tt.opts...).ArtifactSelectors()
			var want []bus.Selector
			for _, k := range tt.want {
				want = append(want, bus.Exact(k))
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}
