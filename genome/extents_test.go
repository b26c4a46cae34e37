package genome

import (
	"errors"
	"slices"
	"testing"
)

// TestExtentsAndTierOf: Extents gives the page-aligned bytes a page-in
// reads, to a persona PageIn would admit, and moves nothing; TierOf
// follows the page through the tiers.
func TestExtentsAndTierOf(t *testing.T) {
	pg := int64(pageSize)
	fx := newFixture(t, 8*pg, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	ref := RangePage(fx.art, pg+100, 2*pg)
	ex, err := fx.m.Extents(fx.alice, ref)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Extent{{pg, 3 * pg}}; !slices.Equal(ex, want) {
		t.Errorf("Extents: got %v, want %v", ex, want)
	}
	if got := fx.m.TierOf(ref); got != TierNone {
		t.Errorf("TierOf before any page-in: got %s, want none", got)
	}
	if got := cachedBytes(t, fx.path, 0, 8*pg); got != 0 {
		t.Errorf("Extents read %d bytes, want 0", got)
	}
	fx.pageIn(t, ref)
	if got := fx.m.TierOf(ref); got != TierWarm {
		t.Errorf("TierOf after PageIn: got %s, want warm", got)
	}
	fx.pageOut(t, ref, TierCold)
	if got := fx.m.TierOf(ref); got != TierCold {
		t.Errorf("TierOf after PageOut: got %s, want cold", got)
	}

	if err := fx.m.RegisterPageOwner(fx.admin, ref, fx.alice); err != nil {
		t.Fatal(err)
	}
	var ad *AccessDeniedError
	if _, err := fx.m.Extents(fx.bob, ref); !errors.As(err, &ad) {
		t.Errorf("Extents of alice's page for bob: got %v, want *AccessDeniedError", err)
	}
	if _, err := fx.m.Extents(fx.alice, RangePage(NewArtifactID(), 0, pg)); !errors.Is(err, ErrUnknownArtifact) {
		t.Errorf("Extents of an unknown artifact: got %v, want ErrUnknownArtifact", err)
	}
	if _, err := fx.m.Extents(fx.alice, RangePage(fx.art, 7*pg, 2*pg)); !errors.Is(err, ErrBadPage) {
		t.Errorf("Extents past the end of the file: got %v, want ErrBadPage", err)
	}
}
