package genome

import (
	"cmp"
	"slices"
)

// extentIndex finds an artifact's pages by the bytes they cover, so that
// region need not walk every page of the artifact: it runs for each
// page-in and each eviction, and a model has thousands of expert pages
// (BenchmarkPageInFaultManyPages: a walk of 8,192 Cold pages made a fault
// cost 2.8 ms instead of 0.1 ms).
//
// Extents up to wideExtent long are kept sorted by offset, so that the
// ones overlapping a range are found by binary search; longer ones (a
// Whole page, a large Range page) are few and are scanned. Guarded by
// Local.opMu, as region is.
type extentIndex struct {
	short    []indexedExtent // sorted by off
	wide     []indexedExtent
	maxShort int64 // the longest extent in short
	stamp    uint64
}

// indexedExtent is one extent [off, end) of a page.
type indexedExtent struct {
	off, end int64
	st       *pageState
}

// wideExtent is the longest extent kept in the sorted list. Expert and
// tensor extents are a few MiB; a longer one would widen every search.
const wideExtent = 64 << 20

// add indexes st's extents. Pages are added once, when their state is
// made, and stay until the artifact's pages are dropped (reset).
func (x *extentIndex) add(st *pageState) {
	for _, e := range st.ext {
		it := indexedExtent{off: e.Off, end: e.End(), st: st}
		if e.Len > wideExtent {
			x.wide = append(x.wide, it)
			continue
		}
		i, _ := slices.BinarySearchFunc(x.short, e.Off, func(a indexedExtent, off int64) int { return cmp.Compare(a.off, off) })
		x.short = slices.Insert(x.short, i, it)
		x.maxShort = max(x.maxShort, e.Len)
	}
}

// reset forgets every page.
func (x *extentIndex) reset() { *x = extentIndex{stamp: x.stamp} }

// appendOverlapping appends to out each page with an extent that overlaps
// one of win, once, and returns it. The order is unspecified.
func (x *extentIndex) appendOverlapping(out []*pageState, win []Extent) []*pageState {
	x.stamp++
	take := func(it indexedExtent, w Extent) {
		if it.off < w.End() && w.Off < it.end && it.st.seen != x.stamp {
			it.st.seen = x.stamp
			out = append(out, it.st)
		}
	}
	for _, w := range win {
		// An extent that ends after w.Off starts after w.Off-maxShort.
		i, _ := slices.BinarySearchFunc(x.short, w.Off-x.maxShort+1, func(a indexedExtent, off int64) int { return cmp.Compare(a.off, off) })
		for ; i < len(x.short) && x.short[i].off < w.End(); i++ {
			take(x.short[i], w)
		}
		for _, it := range x.wide {
			take(it, w)
		}
	}
	return out
}
