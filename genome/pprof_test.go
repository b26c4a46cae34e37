package genome

import (
	"net/http/httptest"
	httppprof "net/http/pprof"
	"runtime/pprof"
	"strings"
	"testing"
)

func TestPprofProfiles(t *testing.T) {
	fx := newFixture(t, 2*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	lp, fp := pprof.Lookup(LockedProfileName), pprof.Lookup(FaultProfileName)
	if lp == nil || fp == nil {
		t.Fatalf("profiles: got %v %v, want both registered", lp, fp)
	}
	l0, f0 := lp.Count(), fp.Count()
	ref := RangePage(fx.art, 0, mib)
	fx.pageIn(t, ref)
	fx.pageIn(t, RangePage(fx.art, mib, mib))
	if got := lp.Count() - l0; got != 2 {
		t.Fatalf("locked profile: got %d new entries, want 2", got)
	}
	if got := fp.Count() - f0; got != 2 {
		t.Fatalf("fault profile: got %d new entries, want 2", got)
	}
	for _, name := range []string{LockedProfileName, FaultProfileName} {
		rec := httptest.NewRecorder()
		httppprof.Handler(name).ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/"+name+"?debug=1", nil))
		body := rec.Body.String()
		if rec.Code != 200 || !strings.Contains(body, name) || !strings.Contains(body, "genome.(*fixture).pageIn") {
			t.Fatalf("/debug/pprof/%s: got %d %q, want the profile with the PageIn caller's stack", name, rec.Code, body)
		}
	}
	fx.pageOut(t, ref, TierCold)
	if got := lp.Count() - l0; got != 1 {
		t.Fatalf("locked profile after PageOut: got %d entries, want 1", got)
	}
	fx.m.Close()
	if lp.Count() != l0 || fp.Count() != f0 {
		t.Fatalf("after Close: locked %d, faults %d entries, want %d, %d", lp.Count(), fp.Count(), l0, f0)
	}
}
