package genome

import "fmt"

// PageKind says what a page is a page of.
type PageKind uint8

// The page kinds.
const (
	PageWhole  PageKind = iota + 1 // a whole artifact (model file, adapter)
	PageExpert                     // one MoE expert of one layer: its slices of the stacked ffn_*_exps tensors
	PageRange                      // a byte range of an artifact
)

// String returns the lower-case name of the kind.
func (k PageKind) String() string {
	switch k {
	case PageWhole:
		return "whole"
	case PageExpert:
		return "expert"
	case PageRange:
		return "range"
	}
	return fmt.Sprintf("PageKind(%d)", uint8(k))
}

// PageOffset locates a page inside its artifact. Which fields mean
// something depends on the kind: none for Whole, Layer and Expert for
// Expert, Off and Len (bytes) for Range. Unused fields are zero so that
// PageRef stays comparable and usable as a map key.
type PageOffset struct {
	Layer  uint32
	Expert uint32
	Off    int64
	Len    int64
}

// PageRef names a page. It is comparable and is the key of every map in the
// genome.
type PageRef struct {
	Kind     PageKind
	Artifact ArtifactID
	Offset   PageOffset
}

// WholePage returns the ref of the whole artifact a.
func WholePage(a ArtifactID) PageRef { return PageRef{Kind: PageWhole, Artifact: a} }

// ExpertPage returns the ref of expert e of layer l of artifact a.
func ExpertPage(a ArtifactID, layer, expert int) PageRef {
	return PageRef{Kind: PageExpert, Artifact: a, Offset: PageOffset{Layer: uint32(layer), Expert: uint32(expert)}}
}

// RangePage returns the ref of the byte range [off, off+n) of artifact a.
func RangePage(a ArtifactID, off, n int64) PageRef {
	return PageRef{Kind: PageRange, Artifact: a, Offset: PageOffset{Off: off, Len: n}}
}

// String formats the ref for logs and profiles.
func (p PageRef) String() string {
	switch p.Kind {
	case PageExpert:
		return fmt.Sprintf("%s/expert[%d,%d]", p.Artifact, p.Offset.Layer, p.Offset.Expert)
	case PageRange:
		return fmt.Sprintf("%s/range[%d+%d]", p.Artifact, p.Offset.Off, p.Offset.Len)
	}
	return fmt.Sprintf("%s/%s", p.Artifact, p.Kind)
}

// Extent is a byte range [Off, Off+Len) of an artifact's file.
type Extent struct {
	Off, Len int64
}

// End returns Off+Len.
func (e Extent) End() int64 { return e.Off + e.Len }

// PageHandle is what PageIn returns: the page, the tier it was found or
// placed in, and its bytes. The bytes stay readable until the manager is
// closed, across freezes and thaws of the artifact too; a later PageOut may
// move them to disk, after which reading them faults them back in through
// the kernel. Close cannot reach every copy of a handle, so it poisons
// them instead: Valid turns false, Bytes returns nil, and slices taken
// before read zeros (their address range is never reused). A PageHandle
// is a small value; copying it is fine.
type PageHandle struct {
	Ref  PageRef
	Tier TierRole
	st   *pageState
}

// Bytes returns the page's byte slices in file order: one for Whole and Range
// pages, one per stacked tensor (gate, up, down) for Expert pages. The slices
// alias the mapping and must not be written; they are shared, not copied.
// It returns nil once the manager is closed.
func (h PageHandle) Bytes() [][]byte {
	if !h.Valid() {
		return nil
	}
	return h.st.views
}

// Valid reports whether the handle's bytes are the file's: false for the
// zero handle and once the manager that returned it is closed.
func (h PageHandle) Valid() bool {
	return h.st != nil && !h.st.file.closed.Load()
}

// Extents returns the page's byte ranges in its file, as given by the
// artifact (not rounded to OS pages). The slice is shared; do not modify.
func (h PageHandle) Extents() []Extent {
	if h.st == nil {
		return nil
	}
	return h.st.raw
}

// Size returns the page's size in bytes as accounted against tier limits
// (its extents rounded out to OS pages).
func (h PageHandle) Size() int64 {
	if h.st == nil {
		return 0
	}
	return h.st.cost
}

// ResidentPage describes one page in a working-set snapshot.
type ResidentPage struct {
	Ref    PageRef
	Tier   TierRole
	Bytes  int64
	Pinned bool
	Owner  PersonaID // the first owner of any of its bytes; zero when none
	Hits   uint64
}

// WorkingSet is a snapshot of the pages the manager has placed and of the
// capacity of each configured tier, taken under one lock so the figures
// agree with each other.
type WorkingSet struct {
	Pages    []ResidentPage
	Capacity []TierCapacity
}

// Bytes returns the sum of Bytes of the pages in tier r.
func (w WorkingSet) Bytes(r TierRole) int64 {
	var n int64
	for _, p := range w.Pages {
		if p.Tier == r {
			n += p.Bytes
		}
	}
	return n
}

// CapacityOf returns the capacity of tier r and whether r is configured.
func (w WorkingSet) CapacityOf(r TierRole) (TierCapacity, bool) {
	for _, c := range w.Capacity {
		if c.Role == r {
			return c, true
		}
	}
	return TierCapacity{Role: r}, false
}
