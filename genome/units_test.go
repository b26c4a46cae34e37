package genome

import (
	"math"
	"strings"
	"testing"
)

func TestTierCapacityEdges(t *testing.T) {
	tests := []struct {
		name  string
		c     TierCapacity
		avail int64
		util  float64
		fits  int64
		fitOK bool
	}{
		{"empty", TierCapacity{Limit: 100}, 100, 0, 100, true},
		{"exactly full", TierCapacity{Limit: 100, Used: 100}, 0, 1, 1, false},
		{"over limit saturates", TierCapacity{Limit: 100, Used: 150}, 0, 1.5, 0, true},
		{"one byte left", TierCapacity{Limit: 100, Used: 99}, 1, 0.99, 2, false},
		{"zero limit is unlimited", TierCapacity{Used: 5}, math.MaxInt64, 0, math.MaxInt64, true},
		{"negative limit is unlimited", TierCapacity{Limit: -1, Used: 5}, math.MaxInt64, 0, 1 << 40, true},
		{"zero limit and zero used", TierCapacity{}, math.MaxInt64, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Available(); got != tt.avail {
				t.Errorf("Available: got %d, want %d", got, tt.avail)
			}
			if got := tt.c.Utilization(); math.Abs(got-tt.util) > 1e-9 || math.IsNaN(got) {
				t.Errorf("Utilization: got %v, want %v", got, tt.util)
			}
			if got := tt.c.Fits(tt.fits); got != tt.fitOK {
				t.Errorf("Fits(%d): got %v, want %v", tt.fits, got, tt.fitOK)
			}
		})
	}
}

func TestTierRoles(t *testing.T) {
	tests := []struct {
		r        TierRole
		name     string
		uma      bool
		resident bool
		policy   EvictionPolicy
	}{
		{TierNone, "none", false, false, PolicyNone},
		{TierFast, "fast", false, true, PolicySampledLFU},
		{TierWarm, "warm", true, true, PolicyCycle},
		{TierBench, "bench", true, true, PolicySampledLFU},
		{TierCold, "cold", true, false, PolicyNone},
		{TierFrozen, "frozen", true, false, PolicyNone},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.name {
			t.Errorf("String: got %q, want %q", got, tt.name)
		}
		if got := tt.r.PresentOnUMA(); got != tt.uma {
			t.Errorf("%s PresentOnUMA: got %v, want %v", tt.r, got, tt.uma)
		}
		if got := tt.r.Resident(); got != tt.resident {
			t.Errorf("%s Resident: got %v, want %v", tt.r, got, tt.resident)
		}
		if got := CanonicalPolicy(tt.r); got != tt.policy {
			t.Errorf("CanonicalPolicy(%s): got %s, want %s", tt.r, got, tt.policy)
		}
	}
	if !TierWarm.Above(TierBench) || TierBench.Above(TierWarm) || !TierCold.Above(TierNone) || TierNone.Above(TierFrozen) {
		t.Error("Above: wrong order")
	}
}

func TestExtentMath(t *testing.T) {
	ps := int64(pageSize)
	tests := []struct {
		name string
		got  []Extent
		want []Extent
	}{
		{"align rounds out", alignExtents([]Extent{{10, 20}}, 10*ps), []Extent{{0, ps}}},
		{"align merges neighbours", alignExtents([]Extent{{ps + 1, 10}, {0, 5}, {2*ps - 1, 2}}, 10*ps), []Extent{{0, 3 * ps}}},
		{"align clamps to file", alignExtents([]Extent{{ps, 5 * ps}}, 2*ps+1), []Extent{{ps, 2 * ps}}},
		{"align drops empty", alignExtents([]Extent{{ps, 0}}, 2*ps), []Extent{}},
		{"subtract middle", subtractExtents([]Extent{{0, 4 * ps}}, []Extent{{ps, ps}}), []Extent{{0, ps}, {2 * ps, 2 * ps}}},
		{"subtract all", subtractExtents([]Extent{{ps, ps}}, []Extent{{0, 4 * ps}}), nil},
		{"subtract disjoint", subtractExtents([]Extent{{0, ps}}, []Extent{{2 * ps, ps}}), []Extent{{0, ps}}},
		{"subtract two cuts", subtractExtents([]Extent{{0, 6 * ps}}, []Extent{{4 * ps, ps}, {ps, ps}}), []Extent{{0, ps}, {2 * ps, 2 * ps}, {5 * ps, ps}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.got) != len(tt.want) {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
			for i := range tt.want {
				if tt.got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", tt.got, tt.want)
				}
			}
		})
	}
}

func TestParseProcMaps(t *testing.T) {
	const text = `55d0c0a00000-55d0c0a22000 r--p 00000000 fd:01 1311234                    /usr/bin/cat
7f1c2a000000-7f1c2a200000 r--s 00000000 fd:01 42                         /tmp/x/model gguf.bin
7f1c2a200000-7f1c2e000000 r--s 00200000 fd:01 42                         /tmp/x/model gguf.bin
7f1c2e000000-7f1c2e001000 rw-p 00000000 00:00 0 
7ffd1e9c1000-7ffd1e9e2000 rw-p 00000000 00:00 0                          [stack]
`
	var s mapsScanner
	var runs []fileRun
	if err := s.runs([]byte(text), func(r fileRun) { runs = append(runs, r) }); err != nil {
		t.Fatal(err)
	}
	// The two model VMAs join; anonymous mappings are not file runs.
	if len(runs) != 2 {
		t.Fatalf("got %d runs %+v, want 2", len(runs), runs)
	}
	if r := runs[1]; r.start != 0x7f1c2a000000 || r.end != 0x7f1c2e000000 || r.off != 0 || r.maj != 0xfd || r.min != 1 || r.ino != 42 {
		t.Fatalf("run 1: got %+v", r)
	}
	bad := []string{
		"zz-10 r--p 0 fd:01 1 /x",
		"10-5 r--p 0 fd:01 1 /x",
		"10-20 r--p 0 fd01 1 /x",
		"10-20 r--p 0 fd:01",
		"10-20 r--p xyz fd:01 1 /x",
		"10-20",
	}
	for _, line := range bad {
		if err := s.runs([]byte(line+"\n"), func(fileRun) {}); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("parse %q: got %v, want an error naming line 1", line, err)
		}
	}
}

// FuzzParseProcMaps checks that any input gives runs or an error, never a
// panic, and that every run has end >= start.
func FuzzParseProcMaps(f *testing.F) {
	f.Add("7f1c2a000000-7f1c2a200000 r--s 00000000 fd:01 42   /tmp/m.gguf\n")
	f.Add("0-1 ---p 0 0:0 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		var sc mapsScanner
		_ = sc.runs([]byte(s), func(r fileRun) {
			if r.end < r.start {
				t.Fatalf("run %+v: end before start", r)
			}
		})
	})
}

func TestParseStatusKB(t *testing.T) {
	st := []byte("Name:\tx\nVmLck:\t    2048 kB\nVmPin:\t0 kB\n")
	if n, err := parseStatusKB(st, "VmLck:"); err != nil || n != 2048<<10 {
		t.Fatalf("got %d, %v, want %d", n, err, 2048<<10)
	}
	if _, err := parseStatusKB(st, "VmSwap:"); err == nil {
		t.Fatal("missing key: got nil error")
	}
}

func TestIDsAreDistinctTypes(t *testing.T) {
	p, a := NewPersonaID(), NewArtifactID()
	if p.IsZero() || a.IsZero() || p.String() == a.String() {
		t.Fatalf("got persona %s artifact %s, want two non-zero distinct ids", p, a)
	}
	q, err := ParsePersonaID(p.String())
	if err != nil || q != p {
		t.Fatalf("round trip: got %s, %v, want %s", q, err, p)
	}
	if _, err := ParseArtifactID("not-a-uuid"); err == nil {
		t.Fatal("ParseArtifactID of garbage: got nil error")
	}
	// A PageRef is a map key.
	m := map[PageRef]int{ExpertPage(a, 1, 2): 1, RangePage(a, 0, 10): 2, WholePage(a): 3}
	if m[ExpertPage(a, 1, 2)] != 1 || m[RangePage(a, 0, 10)] != 2 || m[WholePage(a)] != 3 || len(m) != 3 {
		t.Fatalf("PageRef map: got %v", m)
	}
}
