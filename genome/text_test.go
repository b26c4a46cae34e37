package genome

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestJSONNames checks the JSON forms of events: IDs as UUID strings,
// tiers, kinds, regions and operations by name, and that they read back.
func TestJSONNames(t *testing.T) {
	a, p := NewArtifactID(), NewPersonaID()
	d := AccessDenied{Actor: p, Page: ExpertPage(a, 2, 5), Region: RegionAdapters, Op: OpRead | OpPage, Reason: "owned"}
	f := PageFault{Persona: p, Page: WholePage(a), From: TierCold, To: TierWarm, Bytes: 4096, Latency: time.Millisecond}
	e := EvictionRecord{Page: WholePage(a), From: TierWarm, To: TierCold, Reason: EvictCapacity, Policy: PolicySampledLFU}
	for _, tc := range []struct {
		v    any
		back any
		want []string
	}{
		{d, &AccessDenied{}, []string{`"Actor":"` + p.String() + `"`, `"Kind":"expert"`, `"Region":"adapters"`, `"Op":"read|page"`}},
		{f, &PageFault{}, []string{`"Artifact":"` + a.String() + `"`, `"From":"cold"`, `"To":"warm"`}},
		{e, &EvictionRecord{}, []string{`"Reason":"capacity"`, `"Policy":"` + PolicySampledLFU.String() + `"`}},
	} {
		raw, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(raw), w) {
				t.Errorf("JSON %s lacks %s", raw, w)
			}
		}
		if err := json.Unmarshal(raw, tc.back); err != nil {
			t.Fatalf("reading back %s: %v", raw, err)
		}
		again, _ := json.Marshal(tc.back)
		if string(again) != string(raw) {
			t.Errorf("round trip: got %s, want %s", again, raw)
		}
	}
	var r TierRole
	if err := json.Unmarshal([]byte(`"lukewarm"`), &r); err == nil {
		t.Error("an unknown tier name was accepted")
	}
}
