package genome

import (
	"context"
	"sync/atomic"
)

// Region is what the manager hands a TierStore: one page, the file and
// mappings it lives in, and the byte ranges to act on.
type Region struct {
	Ref  PageRef
	File *ArtifactFile
	// Bytes is the page's size as accounted against tier limits.
	Bytes int64
	// Extents are the page's byte ranges rounded out to OS pages.
	Extents []Extent
	// Release is the part of Extents that no other page still holds in the
	// tier being left (for Evict), in any resident tier (for a Write to
	// Cold), or in the tier being entered (for a Read or Write into Warm):
	// the bytes a store may unlock or drop without hurting a neighbour that
	// shares an OS page with this one, be it to let go of the page or to
	// undo a move that failed half-way.
	Release []Extent
	// Drop is what a store that drops r from the page cache hands the
	// kernel for it: Release, plus the bytes of the pages already in Cold
	// that share a folio with it (within the folio-aligned window around
	// Extents), less the bytes of every page a resident tier holds.
	// POSIX_FADV_DONTNEED drops only folios wholly inside its range, and
	// a file's folios straddle page boundaries, so dropping Release alone
	// leaves cached every folio it shares with a neighbour, even once the
	// neighbour is Cold too. Bytes no page covers are never added (see
	// doc.go, Folios). nil means Release.
	Drop []Extent
}

// TierStore is one tier's memory: it moves a page's bytes into the tier
// (Read from below: map, populate, lock, thaw; Write from above: unlock,
// drop from the page cache, compress), lets go of them (Evict), and keeps
// the tier's byte accounting (Capacity). Eviction choice and access
// observation are the tier's policy (CanonicalPolicy), kept by the manager.
//
// A store is driven by one manager, which serializes Read, Write and Evict;
// Role and Capacity are safe for concurrent use.
type TierStore interface {
	Role() TierRole
	Capacity() TierCapacity
	// Read brings r's bytes up into this tier from a lower one.
	Read(ctx context.Context, r *Region) error
	// Write brings r's bytes down into this tier from a higher one.
	Write(ctx context.Context, r *Region) error
	// Evict releases this tier's hold on r; another tier now holds it.
	Evict(ctx context.Context, r *Region) error
}

// meter is the byte accounting shared by the stores.
type meter struct {
	role  TierRole
	limit int64
	used  atomic.Int64
}

func (m *meter) Role() TierRole { return m.role }

func (m *meter) Capacity() TierCapacity {
	return TierCapacity{Role: m.role, Limit: m.limit, Used: m.used.Load()}
}

// WarmStore is the Warm tier: page ranges mlock'd in the artifact's primary
// mapping. A locked page is resident and counted in VmLck until unlocked.
type WarmStore struct{ meter }

// NewWarmStore returns a Warm tier holding at most limit bytes (0: no
// limit). NewLocal lowers the limit to what RLIMIT_MEMLOCK lets the
// process lock, when that is less.
func NewWarmStore(limit int64) *WarmStore {
	return &WarmStore{meter{role: TierWarm, limit: limit}}
}

// Read locks r's extents; mlock reads from disk what is not yet cached.
// If a chunk fails, what this call locked of r.Release is unlocked again.
func (s *WarmStore) Read(ctx context.Context, r *Region) error {
	if err := r.File.lock(r.Extents, r.Release); err != nil {
		return err
	}
	s.used.Add(r.Bytes)
	return nil
}

// Write locks r's extents, as Read does.
func (s *WarmStore) Write(ctx context.Context, r *Region) error { return s.Read(ctx, r) }

// Evict unlocks r's Release ranges.
func (s *WarmStore) Evict(ctx context.Context, r *Region) error {
	s.used.Add(-r.Bytes)
	return r.File.unlock(r.Release)
}

// BenchStore is the Bench tier: page ranges populated into the primary
// mapping with MADV_POPULATE_READ and left unlocked, so the kernel may
// still reclaim them under memory pressure.
type BenchStore struct{ meter }

// NewBenchStore returns a Bench tier holding at most limit bytes (0: no limit).
func NewBenchStore(limit int64) *BenchStore {
	return &BenchStore{meter{role: TierBench, limit: limit}}
}

// Read populates r's extents, reading from disk what is not cached.
func (s *BenchStore) Read(ctx context.Context, r *Region) error {
	if err := r.File.populate(r.Extents); err != nil {
		return err
	}
	s.used.Add(r.Bytes)
	return nil
}

// Write populates r's extents; coming from Warm they are resident already
// and this costs a page-table walk.
func (s *BenchStore) Write(ctx context.Context, r *Region) error { return s.Read(ctx, r) }

// Evict only drops the accounting: the bytes stay cached until a tier
// below drops them.
func (s *BenchStore) Evict(ctx context.Context, r *Region) error {
	s.used.Add(-r.Bytes)
	return nil
}

// ColdStore is the Cold tier: the file on disk, its pages dropped from the
// page cache (MADV_DONTNEED on every mapping, then POSIX_FADV_DONTNEED).
// It has no limit by default: disk holds every page.
type ColdStore struct{ meter }

// NewColdStore returns the Cold tier.
func NewColdStore() *ColdStore { return &ColdStore{meter{role: TierCold}} }

// Read drops r's Release ranges (with the folios of Drop) from the page
// cache: a file thawed from Frozen arrives through the page cache and is
// made cold here.
func (s *ColdStore) Read(ctx context.Context, r *Region) error { return s.Write(ctx, r) }

// Write drops r's Release ranges, and the folios of Drop, from the page
// cache. The bytes are charged even when that fails: the file on disk
// holds them whether or not the cache still does.
func (s *ColdStore) Write(ctx context.Context, r *Region) error {
	s.used.Add(r.Bytes)
	return r.File.evict(r.Release, r.Drop)
}

// Evict only drops the accounting: the file stays on disk.
func (s *ColdStore) Evict(ctx context.Context, r *Region) error {
	s.used.Add(-r.Bytes)
	return nil
}
