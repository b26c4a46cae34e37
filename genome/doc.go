// Package genome is Strata's working-set manager: it pages model weights,
// MoE experts and LoRA adapters between five memory tiers and measures,
// with mincore, where the bytes really are.
//
// # Tiers
//
//	role    where the bytes are            mechanism (Linux)                          store
//	Fast    device memory                  GPU backend buffer                         not configured on a CPU build
//	Warm    host RAM, locked               mlock of the mapped range                  WarmStore
//	Bench   page cache, reclaimable        MADV_POPULATE_READ, unlocked               BenchStore
//	Cold    on disk, not cached            munlock, MADV_DONTNEED on every mapping,   ColdStore
//	                                       then writeback and POSIX_FADV_DONTNEED
//	                                       over whole folios
//	Frozen  compressed archive             zstd, SHA-256 content address; page-in    FrozenStore
//	                                       thaws to a Cold file
//
// Eviction policy per tier is CanonicalPolicy's table (policy.go): cycle
// for Warm (MoE experts by their expected wait in the decode's cycle of
// layers, learned from the page-ins: cycle.go; other pages by LRU),
// sampled LFU with frequency-gated admission for Bench and Fast, none
// for Cold and Frozen. Admission is separate from eviction and cost is in
// bytes, after dgraph-io/ristretto.
//
// # Pages
//
// A PageRef names a Whole artifact, an Expert (layer, expert: its slices of
// the stacked ffn_gate/up/down_exps tensors, from gguf.File.ExpertRanges)
// or a byte Range. Every range handed to the kernel is rounded out to OS
// pages; pages that share an OS page are handled by releasing only the
// bytes no other held page needs (mlock and the page cache do not count
// references).
//
// # What evicts, measured
//
// Measured on this machine (Linux 6.18, ext4 on virtio, read_ahead_kb 8192,
// 64 MiB file, residency by mincore through a fresh mapping, and read-back
// time as a cross-check; TestEvictionMechanisms re-checks the first six on
// every test run):
//
//	POSIX_FADV_DONTNEED, file not mapped            0 MiB resident (re-read 20 ms: from disk)
//	POSIX_FADV_DONTNEED, range still mapped         64 MiB resident (re-read 3 ms: from cache)
//	MADV_DONTNEED alone                             64 MiB resident: it only unmaps the PTEs
//	MADV_DONTNEED then POSIX_FADV_DONTNEED          0 MiB (re-read 21 ms)
//	mlock'd: MADV_DONTNEED fails (EINVAL), fadvise  64 MiB: locked pages cannot be dropped
//	munlock, MADV_DONTNEED, POSIX_FADV_DONTNEED     0 MiB
//	second mapping populated, DONTNEED on one       64 MiB: the other mapping holds the pages
//	MADV_PAGEOUT, only mapping                      0 MiB, and mincore agreed at once
//	MADV_PAGEOUT, two mappings (on each)            40 of 64 MiB still resident
//
// So Cold is munlock + MADV_DONTNEED on every mapping of the file in this
// process + POSIX_FADV_DONTNEED, and it works only if the genome knows every
// mapping: that is why the manager attaches to llama.cpp's mapping
// (AttachMappings, found in /proc/self/maps by device and inode). Without
// it, the eviction leaves llama.cpp's populated pages resident, and
// EvictionRecord.StillResident says so (TestAttachToForeignMapping).
// MADV_PAGEOUT is not used: with two mappings it reclaimed an unpredictable
// part. DESIGN.md's note that mincore still said resident right after
// MADV_PAGEOUT was not reproduced with one mapping; it matches the
// two-mapping case.
//
// # Reading in without reading around
//
// mlock and MADV_POPULATE_READ fault a cold range in at 2-2.5 GB/s here,
// but the fault path reads around: paging in a 16 MiB range cached 4 MiB
// before it and 4-12 MiB after it, and a 256 KiB expert slice pulled in
// 7.8 MiB. Under a budget that is memory the genome did not account for.
// POSIX_FADV_WILLNEED reads exactly what it is asked (in calls of at most
// about 2 MiB) but at about 1.4 GB/s, since it allocates order-0 folios.
// A read(2) also starts its readahead at the offset read (a fault centres
// its read-around on the fault instead) and runs at the device's speed;
// only its asynchronous readahead runs past the end.
//
// So ArtifactFile.readExact reads every extent into the page cache before
// mlock or MADV_POPULATE_READ maps it, and those then only take minor
// faults: short extents (up to two read-ahead windows) through a
// POSIX_FADV_RANDOM descriptor after an exact WILLNEED (the 256 KiB slice:
// nothing outside it); longer ones through the ordinary descriptor after
// their last two windows were queued exactly, which ends the readahead
// chain inside the extent; extents that end at EOF need no guard.
//
// The second half of the fix is MADV_RANDOM on every mapping the genome
// acts on, llama.cpp's included (AttachMappings sets it). Inference
// faults on pages the genome did not page in — a dense weight after an
// eviction, the first touch of a layer — and each such fault used to read
// a whole window around it, which on a model file means neighbouring
// experts: on the tiny MoE under a budget of 2/3 of its experts, mincore
// found 1.5-2.0 MB of its 1.67 MB of experts resident while the genome
// held 0.5 MB (engine.TestExpertPagerBudget). With MADV_RANDOM such a
// fault reads one page, and the kernel's count stays within the budget.
//
// llama.cpp maps a GGUF file from the page-aligned start of its tensor
// data, not from offset 0, so a whole-file extent is only partly inside
// its mapping; eviction clips each extent to each mapping (Mapping.clip).
// Re-checked with the vendored v0.5.0: it maps the whole file
// (MAP_SHARED|MAP_POPULATE unless an architecture marks tensors for lazy
// reading, which only happens above 4 GiB per tensor) and then unmaps the
// fragments it serves from no buffer, the header among them. Its CPU
// backend copies Q4_0, Q4_K and IQ4_NL weights it repacks out of the
// mapping, experts included; engine.PagedExperts keeps experts mapped
// (third_party/patches/0001), or there is nothing here to page.
//
// # Folios: why Cold drops more than a page's own bytes
//
// The page cache holds a file in naturally aligned folios of up to 2 MiB
// here (maxFolio: the PMD size), and the kernel drops only whole folios.
// Measured (Linux 6.18, ext4): a file written in 1 MiB writes (modelgen)
// is cached in 1 MiB folios; one written in a single write (a copy) in
// 2 MiB folios, which a mapping at a 2 MiB-aligned address maps with one
// PMD each; one read back by MAP_POPULATE's readahead in smaller ones.
// Then:
//
//	POSIX_FADV_DONTNEED over part of a folio     drops nothing of it
//	MADV_DONTNEED of 800 KiB of a PMD-mapped     Rss falls by 2 MiB: a file PMD is
//	  2 MiB folio                                zapped whole, not split
//	POSIX_FADV_DONTNEED, written and not synced  all resident: it starts writeback,
//	                                             drops no dirty page
//	sync_file_range(WAIT_BEFORE|WRITE|           0 resident
//	  WAIT_AFTER), then POSIX_FADV_DONTNEED
//
// Expert slices do not end on folio boundaries, so evicting every expert
// of a model one by one, each with exactly its own bytes, left every
// straddling folio cached: after engine.NewBudget paged out all 32 experts
// of a 2-layer tiny MoE (Q8_0, 16 experts) over llama.cpp's mapping,
// mincore found 13.0 of 13.0 MB of expert bytes resident on a freshly
// generated file, 0.99 MB on one read back from disk; only a Whole
// page-out dropped them. So a Cold write also drops, besides its own
// bytes, those of the pages already in Cold inside its folio window
// (Region.Drop): the folio shared by two experts goes with the second.
// It never adds bytes no page covers, such as the dense weights between
// the expert tensors: releasing an expert may have unmapped the huge page
// they share with it, and the kernel would then drop them too, though
// inference reads them every token. Nor bytes a resident tier holds. And
// it writes dirty pages back first. What stays cached is the folios an
// expert shares with dense weights, at most maxFolio minus an OS page at
// each end of each ffn_*_exps tensor: on that tiny MoE 1.5 of 13.0 MB
// (8 KiB read back from disk); on TestExpertPageOutOverPopulatedMapping's
// 27 MiB model, whose dense tensors sit between its 2.2 MiB expert
// tensors, 2.6 MB of 26.8 MB as written and 9.5 MB copied. For a real
// model, whose expert tensors are hundreds of MB, it is a few per cent at
// most; Residency reports it.
//
// The extent is read and mapped chunk by chunk (4 MiB), so the minor
// faults of one chunk overlap the readahead of the next. Cold-to-Warm
// throughput against a plain 1 MiB-chunk sequential read of the same
// evicted range, in the same benchmark (BenchmarkColdToWarm, -benchtime
// 8x -count 3): a whole 64 MiB file 0.82-0.83 (0.78-0.80 at 5x); a 48 MiB
// interior range 0.52-0.61, because its
// guarded tail is two read-ahead windows read at WILLNEED's speed, and
// this machine's disk has read_ahead_kb = 8192 (16 MiB of tail). With the
// common 128 KiB window the tail is 256 KiB. The fault-driven reading this
// replaced reached 0.86 on the whole file but let inference's own faults
// spill outside the budget.
//
// Through an attached mapping (MADV_HUGEPAGE, aligned like the file, THP
// built in) the 2 MiB-aligned blocks inside an extent are not read that
// way but faulted in: the kernel reads each as one folio, exactly the
// block, and maps it with one PMD (hugeBlocks). The 48 MiB range, offset
// by a page so that its ends are read exactly, went from 1,511-1,919 to
// 3,285-3,422 MB/s (ratio 0.45-0.56 to 0.91-1.01; BenchmarkColdToWarm/
// attached, -benchtime 8x -count 2), and a PMD costs the CPU one entry
// where 4 KiB pages cost 512 (BenchmarkMapCached: 29 against 1,336-1,435
// ns a page to map a cached page afresh and touch it, on this VM).
//
// # Concurrency and events
//
// Local is safe for concurrent use. A resident hit takes a read lock and
// does not allocate; faults and page-outs are serialized by one operation
// lock held across the syscalls, with the state lock held only briefly.
// PageFault and EvictionRecord events go to a bounded queue drained by one
// goroutine into the bus; when the queue is full they are dropped and
// counted, so publishing never blocks paging. Flush waits for the queue to
// drain. AccessDenied events never take the queue: the denied call hands
// each one to the denial recorder (SetDenialRecorder) and publishes it
// itself, after releasing the manager's locks and before it returns, so
// no denial is dropped however full the queue.
//
// # Isolation
//
// A page is guarded by its bytes, not by how it is named: it lies in every
// region its bytes lie in (expert bytes are RegionExperts through a Range
// or Whole page too), and bytes a persona owns (RegisterPageOwner) are
// refused to every other persona through any page that covers one of
// them. Reading (PageIn, AuditAccess) needs OpRead; every call that
// changes placement or ownership names its actor.
//
// # Observability
//
// Stats counts hits, faults by source tier, bytes moved, evictions,
// denials, locked bytes and dropped events. The pprof profiles
// strata/genome.locked (one entry per Warm, mlock'd page, at the stack
// that locked it) and strata/genome.faults (the last 256 faults per
// manager) appear under /debug/pprof when net/http/pprof is imported.
package genome
