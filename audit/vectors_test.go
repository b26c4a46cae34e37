package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type vectorFile struct {
	Entries []struct {
		Name          string `json:"name"`
		Seq           uint64 `json:"seq"`
		TimestampMs   int64  `json:"timestampMs"`
		Kind          Kind   `json:"kind"`
		Payload       string `json:"payload"`
		PrevChainHash Hash   `json:"prevChainHash"`
		ChainHash     Hash   `json:"chainHash"`
		Line          string `json:"line"`
	} `json:"entries"`
	CheckpointMessages []struct {
		Seq       uint64 `json:"seq"`
		ChainHash Hash   `json:"chainHash"`
		Message   string `json:"message"`
	} `json:"checkpointMessages"`
}

func loadVectors(tb testing.TB) vectorFile {
	tb.Helper()
	data, err := os.ReadFile("testdata/chain_vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(data, &v); err != nil {
		tb.Fatal(err)
	}
	if len(v.Entries) == 0 || len(v.CheckpointMessages) == 0 {
		tb.Fatal("no vectors")
	}
	return v
}

func TestChainHashKnownAnswers(t *testing.T) {
	for _, v := range loadVectors(t).Entries {
		t.Run(v.Name, func(t *testing.T) {
			got := ChainHash(v.Seq, v.TimestampMs, v.Kind, []byte(v.Payload), v.PrevChainHash)
			if got != v.ChainHash {
				t.Errorf("ChainHash: got %s, want %s", got, v.ChainHash)
			}
			e := Entry{Seq: v.Seq, TimestampMs: v.TimestampMs, Kind: v.Kind, Payload: []byte(v.Payload),
				ChainHash: v.ChainHash, PrevChainHash: v.PrevChainHash}
			if got := string(appendLine(nil, &e)); got != v.Line {
				t.Errorf("line:\ngot  %s\nwant %s", got, v.Line)
			}
			var back Entry
			if reason := parseLine([]byte(v.Line), &back); reason != "" {
				t.Fatalf("parseLine: %s", reason)
			}
			if back.Seq != e.Seq || back.TimestampMs != e.TimestampMs || back.Kind != e.Kind ||
				!bytes.Equal(back.Payload, e.Payload) || back.ChainHash != e.ChainHash || back.PrevChainHash != e.PrevChainHash {
				t.Errorf("parseLine: got %+v, want %+v", back, e)
			}
		})
	}
}

func TestCheckpointMessageKnownAnswers(t *testing.T) {
	for _, v := range loadVectors(t).CheckpointMessages {
		if got := hex.EncodeToString(CheckpointMessage(v.Seq, v.ChainHash)); got != v.Message {
			t.Errorf("CheckpointMessage(%d, %s): got %s, want %s", v.Seq, v.ChainHash, got, v.Message)
		}
	}
}

// The golden log verifies, and Append with the same clock and payloads
// writes it byte for byte.
func TestGoldenLog(t *testing.T) {
	golden, err := os.ReadFile("testdata/golden.log")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := VerifyReader(bytes.NewReader(golden), VerifyOptions{})
	if err != nil {
		t.Fatalf("VerifyReader(golden): %v", err)
	}
	vecs := loadVectors(t).Entries[:5]
	if sum.Entries != 5 || sum.LastHash != vecs[4].ChainHash {
		t.Errorf("got %d entries ending %s, want 5 ending %s", sum.Entries, sum.LastHash, vecs[4].ChainHash)
	}

	path := filepath.Join(t.TempDir(), "a.log")
	i := 0
	l := mustOpen(t, path, &Options{Sync: SyncNone, Now: func() time.Time { return time.UnixMilli(vecs[i].TimestampMs) }})
	for ; i < len(vecs); i++ {
		// Payloads as RawMessage with extra spaces: Append compacts them.
		payload := json.RawMessage(" " + vecs[i].Payload + " ")
		if _, err := l.Append(vecs[i].Kind, payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, golden) {
		t.Errorf("Append wrote\n%s\nwant\n%s", got, golden)
	}
}

func TestLineLen(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
	}{
		{"first entry", Entry{Seq: 1, TimestampMs: 0, Kind: KindRefusal, Payload: json.RawMessage(`null`)}},
		{"largest seq and timestamp", Entry{Seq: math.MaxUint64, TimestampMs: math.MaxInt64, Kind: KindFederationPolicyDrift, Payload: json.RawMessage(`{"a":[1,2]}`)}},
		{"negative timestamp", Entry{Seq: 10, TimestampMs: -1, Kind: KindAccessDenied, Payload: json.RawMessage(`"x"`)}},
		{"smallest timestamp", Entry{Seq: 99, TimestampMs: math.MinInt64, Kind: KindGovernorOverride, Payload: json.RawMessage(`1`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := lineLen(&tt.e), len(tt.e.MarshalLine()); got != want {
				t.Errorf("got %d, want %d", got, want)
			}
		})
	}
}
