package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
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
