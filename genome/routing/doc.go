// Package routing records the MoE routing of a run — for every token,
// the experts each MoE layer chose — and replays it offline: statistics
// that say how skewed and how local the routing is, and cache simulations
// that give the hit rate of LRU, LFU, ARC, the genome's own policy, a
// cycle-aware policy told each expert's frequency (Expected) and Belady's
// optimum at the same capacity.
//
// A trace is what the engine's recorder (engine.TraceRecorder) writes
// while llama.cpp decodes; `strata paging sim` and `strata paging stats`
// read it. The statistics are the ones DESIGN.md calibrates benchmark
// routers against (the top eighth of experts takes 25-45% of a layer's
// routings, 25-45% of a token's experts were the previous token's, most
// experts are touched within a few hundred tokens).
//
// # File format (version 1)
//
// All integers are little-endian. CRC is CRC-32C (Castagnoli).
//
//	offset  size  field
//	0       4     magic "SRTG"
//	4       2     version (1)
//	6       2     flags (0; any other value is rejected)
//	8       4     H: length of the header body
//	12      H     header body:
//	                u16 len, architecture (at most 1024 bytes)
//	                u16 len, model name (at most 1024 bytes)
//	                u32 blocks (the model's layer count, MoE or not)
//	                u32 experts per MoE layer (1..65536)
//	                u32 experts used per token (1..experts)
//	                u32 L, the number of MoE layers (1..blocks)
//	                L × (u32 layer index, ascending; u64 expert bytes, 0 = unknown)
//	12+H    4     CRC of bytes [0, 12+H)
//
// Then chunks, each:
//
//	u32 n, tokens in the chunk (n ≥ 1)
//	n rows of L × used expert ids, layer-major, one byte each when
//	experts ≤ 256, else u16 each
//	u32 CRC of the chunk from its count on
//
// and last an end record: u32 0, u64 the total token count, u32 CRC of
// those 12 bytes. Nothing may follow it. A row is at most 64 KiB and a
// chunk at most 1 MiB, so no file can make a reader allocate more than
// that ahead of the bytes it holds. A file without an end record is
// truncated (a run that did not Close its Writer): Read returns its
// complete chunks with an error wrapping ErrTruncated.
package routing
