package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOpenResumesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l := mustOpen(t, path, &Options{Now: fixedClock(1000, 1)})
	e1, err := l.Append(KindAccessDenied, map[string]string{"who": "engine"})
	if err != nil {
		t.Fatal(err)
	}
	if e1.Seq != 1 || e1.PrevChainHash != GenesisHash {
		t.Errorf("first entry: got seq %d prev %s, want 1 and genesis", e1.Seq, e1.PrevChainHash)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if _, err := l.Append(KindRefusal, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: got %v, want ErrClosed", err)
	}

	l2 := mustOpen(t, path, &Options{Now: fixedClock(2000, 1)})
	if seq, h := l2.Head(); seq != 1 || h != e1.ChainHash {
		t.Errorf("Head after reopen: got %d %s, want 1 %s", seq, h, e1.ChainHash)
	}
	e2, err := l2.Append(KindRefusal, json.RawMessage(`{"a": [1, 2]}`))
	if err != nil {
		t.Fatal(err)
	}
	if e2.Seq != 2 || e2.PrevChainHash != e1.ChainHash || string(e2.Payload) != `{"a":[1,2]}` {
		t.Errorf("second entry: got %+v, want seq 2 chained to the first with compact payload", e2)
	}
	l2.Close()
	if sum, err := Verify(path); err != nil || sum.Entries != 2 || sum.LastHash != e2.ChainHash {
		t.Errorf("Verify: got %+v, %v, want 2 entries ending %s", sum, err, e2.ChainHash)
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	l := mustOpen(t, filepath.Join(t.TempDir(), "a.log"), &Options{Sync: SyncNone})
	tests := []struct {
		name    string
		kind    Kind
		payload any
		want    error
	}{
		{"unknown kind", "made-up", nil, ErrUnknownKind},
		{"camel kind", "accessDenied", nil, ErrUnknownKind},
		{"invalid raw json", KindRefusal, json.RawMessage(`{"a":`), ErrInvalidPayload},
		{"invalid bytes", KindRefusal, []byte(`nope`), ErrInvalidPayload},
		{"unencodable", KindRefusal, func() {}, ErrInvalidPayload},
	}
	for _, tt := range tests {
		if _, err := l.Append(tt.kind, tt.payload); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if seq, _ := l.Head(); seq != 0 {
		t.Errorf("got seq %d after rejected appends, want 0", seq)
	}
}

func TestClockGoingBackIsClamped(t *testing.T) {
	times := []int64{500, 400, 600}
	i := 0
	path := filepath.Join(t.TempDir(), "a.log")
	l := mustOpen(t, path, &Options{Sync: SyncNone, Now: func() time.Time { i++; return time.UnixMilli(times[i-1]) }})
	var got []int64
	for range times {
		e, err := l.Append(KindRefusal, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.TimestampMs)
	}
	if got[0] != 500 || got[1] != 500 || got[2] != 600 {
		t.Errorf("got timestamps %v, want [500 500 600]", got)
	}
	l.Close()
	if _, err := Verify(path); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestSecondWriterIsLockedOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	mustOpen(t, path, nil)
	if _, err := Open(path, nil); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: got %v, want ErrLocked", err)
	}
	if _, err := Repair(path); !errors.Is(err, ErrLocked) {
		t.Errorf("Repair under a live Log: got %v, want ErrLocked", err)
	}
}

// faultyFile fails on demand.
type faultyFile struct {
	logFile
	writePartial int // with failWrite: bytes written before failing
	failWrite    bool
	failSync     bool
	failTruncate bool
	syncs        int
}

var errInjected = errors.New("injected failure")

func (f *faultyFile) Write(p []byte) (int, error) {
	if f.failWrite {
		n, _ := f.logFile.Write(p[:f.writePartial])
		return n, errInjected
	}
	return f.logFile.Write(p)
}

func (f *faultyFile) Sync() error {
	f.syncs++
	if f.failSync {
		return errInjected
	}
	return f.logFile.Sync()
}

func (f *faultyFile) Truncate(n int64) error {
	if f.failTruncate {
		return errInjected
	}
	return f.logFile.Truncate(n)
}

func TestAppendIsAtomic(t *testing.T) {
	tests := []struct {
		name       string
		fault      faultyFile
		wantBroken bool
	}{
		{"write fails at once", faultyFile{failWrite: true}, false},
		{"partial write", faultyFile{failWrite: true, writePartial: 37}, false},
		{"fsync fails", faultyFile{failSync: true}, true},
		{"partial write, truncate fails", faultyFile{failWrite: true, writePartial: 10, failTruncate: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.log")
			l := mustOpen(t, path, nil)
			if _, err := l.Append(KindAccessDenied, 1); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			seq, head := l.Head()
			ff := tt.fault
			ff.logFile = l.f
			l.f = &ff

			_, err := l.Append(KindAccessDenied, 2)
			var we *WriteError
			if !errors.As(err, &we) || !errors.Is(err, errInjected) || we.Broken != tt.wantBroken {
				t.Fatalf("got %v, want a *WriteError wrapping the failure with Broken=%v", err, tt.wantBroken)
			}
			if s, h := l.Head(); s != seq || h != head {
				t.Errorf("chain advanced to %d %s, want %d %s", s, h, seq, head)
			}
			after, _ := os.ReadFile(path)
			if !tt.fault.failTruncate && !bytes.Equal(after, before) {
				t.Errorf("file changed:\n%s\nwant\n%s", after, before)
			}

			ff.failWrite, ff.failSync, ff.failTruncate = false, false, false
			_, err = l.Append(KindAccessDenied, 3)
			if tt.wantBroken {
				if !errors.Is(err, errInjected) {
					t.Errorf("Append on a broken log: got %v, want the original failure", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Append after recovery: %v", err)
			}
			l.Close()
			if sum, err := Verify(path); err != nil || sum.Entries != 2 {
				t.Errorf("Verify: got %d entries, %v, want 2, nil", sum.Entries, err)
			}
		})
	}
}

func TestSyncPolicies(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		appends   int
		wantSyncs int
	}{
		{"every entry", Options{Sync: SyncEveryEntry}, 10, 10},
		{"batched by count", Options{Sync: SyncBatched, BatchEntries: 4, BatchInterval: time.Hour}, 10, 2},
		{"none", Options{Sync: SyncNone}, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustOpen(t, filepath.Join(t.TempDir(), "a.log"), &tt.opts)
			ff := &faultyFile{logFile: l.f}
			l.f = ff
			for range tt.appends {
				if _, err := l.Append(KindRefusal, nil); err != nil {
					t.Fatal(err)
				}
			}
			if ff.syncs != tt.wantSyncs {
				t.Errorf("got %d fsyncs for %d appends, want %d", ff.syncs, tt.appends, tt.wantSyncs)
			}
		})
	}
}

// The batch interval bounds how long an entry stays unsynced. The test
// waits for the sync to happen rather than timing it.
func TestBatchIntervalSyncs(t *testing.T) {
	l := mustOpen(t, filepath.Join(t.TempDir(), "a.log"), &Options{Sync: SyncBatched, BatchEntries: 1000, BatchInterval: time.Millisecond})
	if _, err := l.Append(KindRefusal, nil); err != nil {
		t.Fatal(err)
	}
	for {
		l.mu.Lock()
		n, armed := l.unsynced, l.armed
		l.mu.Unlock()
		if n == 0 && !armed {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTornTailOpenAndRepair(t *testing.T) {
	es := chain(4, steady)
	full := encode(es)
	tests := []struct {
		name          string
		data          []byte
		wantEntries   int
		wantCompleted bool
	}{
		{"cut mid-line", full[:len(full)-50], 3, false},
		{"only the newline missing", full[:len(full)-1], 4, true},
		{"one byte of a line", append(encode(es[:3]), '{'), 3, false},
		{"zeros after a crash", append(encode(es[:3]), make([]byte, 4096)...), 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.data)
			if _, err := Open(path, nil); !errors.Is(err, ErrTornTail) {
				t.Fatalf("Open: got %v, want ErrTornTail", err)
			}
			res, err := Repair(path)
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if res.Summary.Entries != tt.wantEntries || res.Completed != tt.wantCompleted {
				t.Errorf("Repair: got %+v, want %d entries, completed=%v", res, tt.wantEntries, tt.wantCompleted)
			}
			got, _ := os.ReadFile(path)
			if want := encode(es[:tt.wantEntries]); !bytes.Equal(got, want) {
				t.Errorf("after Repair the file is\n%q\nwant\n%q", got, want)
			}
			l := mustOpen(t, path, nil)
			if e, err := l.Append(KindRefusal, nil); err != nil || e.Seq != uint64(tt.wantEntries+1) {
				t.Errorf("Append after repair: got seq %d, %v, want %d", e.Seq, err, tt.wantEntries+1)
			}
		})
	}
}

func TestRepairLeavesOtherDamageAlone(t *testing.T) {
	es := chain(3, steady)
	es[1].Payload = []byte(`{"tampered":1}`)
	data := append(encode(es), `{"seq":4,"tim`...)
	path := writeFile(t, data)
	if _, err := Repair(path); !errors.Is(err, ErrChainBroken) {
		t.Errorf("Repair: got %v, want ErrChainBroken", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Error("Repair changed a log it could not repair")
	}
	clean := writeFile(t, encode(chain(2, steady)))
	if res, err := Repair(clean); err != nil || res.RemovedBytes != 0 || res.Summary.Entries != 2 {
		t.Errorf("Repair of a clean log: got %+v, %v, want no change", res, err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	const goroutines, each = 8, 200
	path := filepath.Join(t.TempDir(), "a.log")
	l := mustOpen(t, path, &Options{Sync: SyncBatched, BatchEntries: 32})
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if _, err := l.Append(KindAccessDenied, map[string]int{"g": g, "i": i}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := Verify(path)
	if err != nil || sum.Entries != goroutines*each {
		t.Fatalf("Verify: got %d entries, %v, want %d, nil", sum.Entries, err, goroutines*each)
	}
	// Every (g, i) is there once.
	data, _ := os.ReadFile(path)
	seen := map[[2]int]int{}
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var e struct {
			Payload struct{ G, I int } `json:"payload"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		seen[[2]int{e.Payload.G, e.Payload.I}]++
	}
	if len(seen) != goroutines*each {
		t.Errorf("got %d distinct entries, want %d", len(seen), goroutines*each)
	}
}

// quotedPayload returns a JSON string payload that makes the line of an
// entry with seq, timestamp ts and kind exactly lineBytes long, newline
// included.
func quotedPayload(tb testing.TB, seq uint64, ts int64, kind Kind, lineBytes int) json.RawMessage {
	tb.Helper()
	e := Entry{Seq: seq, TimestampMs: ts, Kind: kind, Payload: json.RawMessage(`""`)}
	n := lineBytes - len(e.MarshalLine()) // bytes between the quotes
	if n < 0 {
		tb.Fatalf("a line of %d bytes cannot hold an entry", lineBytes)
	}
	p := make([]byte, n+2)
	for i := range p {
		p[i] = 'x'
	}
	p[0], p[n+1] = '"', '"'
	return p
}

// setMaxLineBytes lowers the line bound of reader and writer for one test,
// which must not run in parallel with others.
func setMaxLineBytes(tb testing.TB, n int) {
	tb.Helper()
	old := maxLineBytes
	maxLineBytes = n
	tb.Cleanup(func() { maxLineBytes = old })
}

// An entry whose line the reader would reject is refused by Append, so one
// oversized payload cannot make the log unopenable; the log goes on. The
// bound is lowered to 256 KiB (still above the reader's 64 KiB buffer, past
// which it counts) so the test does not write 64 MiB lines.
func TestAppendRejectsOversizedEntry(t *testing.T) {
	const limit = 256 << 10
	setMaxLineBytes(t, limit)
	const ts = 1000
	path := filepath.Join(t.TempDir(), "a.log")
	l := mustOpen(t, path, &Options{Sync: SyncNone, Now: fixedClock(ts, 0)})
	tests := []struct {
		name      string
		lineBytes int
		wantErr   error
		wantSeq   uint64 // Head after the append
	}{
		{"one byte over the limit", limit + 1, ErrEntryTooLarge, 0},
		{"far over the limit", 4 * limit, ErrEntryTooLarge, 0},
		{"exactly the limit", limit, nil, 1},
		{"small after a rejected one", 400, nil, 2},
		{"over the limit again", limit + 1, ErrEntryTooLarge, 2},
	}
	for _, tt := range tests {
		seq, _ := l.Head()
		p := quotedPayload(t, seq+1, ts, KindRefusal, tt.lineBytes)
		_, err := l.Append(KindRefusal, p)
		if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Fatalf("%s: got %v, want %v", tt.name, err, tt.wantErr)
		}
		if err != nil {
			for _, want := range []string{strconv.Itoa(tt.lineBytes), strconv.Itoa(limit)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %q does not name %s", tt.name, err, want)
				}
			}
		}
		if got, _ := l.Head(); got != tt.wantSeq {
			t.Errorf("%s: got seq %d, want %d", tt.name, got, tt.wantSeq)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(path, &Options{Sync: SyncNone})
	if err != nil {
		t.Fatalf("reopen: got %v, want nil", err)
	}
	defer l2.Close()
	if seq, _ := l2.Head(); seq != 2 {
		t.Errorf("reopened log: got seq %d, want 2", seq)
	}
}

// The reader's bound is the one Append enforces: a line one byte longer
// than the limit is what Append refuses, and it would not have verified.
func TestReaderRejectsLineOverLimit(t *testing.T) {
	const limit = 256 << 10
	setMaxLineBytes(t, limit)
	tests := []struct {
		name      string
		lineBytes int
		want      error
	}{
		{"exactly the limit", limit, nil},
		{"one byte over", limit + 1, ErrMalformedLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Entry{Seq: 1, TimestampMs: 1000, Kind: KindRefusal, PrevChainHash: GenesisHash}
			e.Payload = quotedPayload(t, e.Seq, e.TimestampMs, e.Kind, tt.lineBytes)
			e.ChainHash = ChainHash(e.Seq, e.TimestampMs, e.Kind, e.Payload, e.PrevChainHash)
			line := e.MarshalLine()
			if len(line) != tt.lineBytes {
				t.Fatalf("built a line of %d bytes, want %d", len(line), tt.lineBytes)
			}
			_, err := Verify(writeFile(t, line))
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// A file's directory entry is durable only once its directory is fsynced:
// Open does that after creating the log and its checkpoint file, unless
// the policy is SyncNone, and fails if it cannot.
func TestOpenSyncsDirectory(t *testing.T) {
	_, priv := testKey(t)
	tests := []struct {
		name      string
		opts      Options
		fail      bool
		wantCalls int
	}{
		{"log and checkpoint file", Options{Signer: priv}, false, 1},
		{"log only, batched", Options{Sync: SyncBatched}, false, 1},
		{"no fsync policy", Options{Sync: SyncNone, Signer: priv}, false, 0},
		{"directory fsync fails", Options{Signer: priv}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "logs")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "a.log")
			var calls int
			old := syncDir
			syncDir = func(d string) error {
				calls++
				if d != dir {
					t.Errorf("fsynced directory %s, want %s", d, dir)
				}
				// The names to make durable must exist by now.
				for _, p := range []string{path, CheckpointPath(path)} {
					if _, err := os.Stat(p); err != nil && (p == path || tt.opts.Signer != nil) {
						t.Errorf("directory fsynced before %s was created: %v", p, err)
					}
				}
				if tt.fail {
					return errInjected
				}
				return nil
			}
			t.Cleanup(func() { syncDir = old })

			l, err := Open(path, &tt.opts)
			if tt.fail {
				if !errors.Is(err, errInjected) {
					t.Errorf("Open: got %v, want the directory fsync's failure", err)
				}
			} else if err != nil {
				t.Fatalf("Open: %v", err)
			} else {
				l.Close()
			}
			if calls != tt.wantCalls {
				t.Errorf("got %d directory fsyncs, want %d", calls, tt.wantCalls)
			}
		})
	}
}
