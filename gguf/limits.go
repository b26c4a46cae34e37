package gguf

// Absolute limits of the reader. The GGUF format bounds none of these, and
// the bytes left in a file are no bound at all: a sparse file of any size
// costs nothing on disk, so a header may claim 2^28 key/values or a string of
// gigabytes and still "fit". Each limit is far above what any real model
// holds, so it only ever rejects hostile or broken files, and together they
// bound what Read allocates to about MaxMetadataBytes plus the tensor table
// (at most MaxTensors entries), whatever the file's size. A file beyond a
// limit gets a *FormatError wrapping ErrLimit that names the field, its
// offset and the limit.
const (
	// MaxKV is the most metadata key/values a file may declare. Real models
	// carry a few dozen (general.*, <arch>.*, tokenizer.*); llama.cpp itself
	// caps only by memory.
	MaxKV = 1 << 16

	// MaxKeyLen is the longest metadata key in bytes, the bound the GGUF
	// specification gives keys (2^16-1). Real keys are under 100 bytes.
	MaxKeyLen = 1<<16 - 1

	// MaxStringLen is the longest metadata string in bytes, alone or in an
	// array. The longest strings real files carry are chat templates (tens
	// of KiB); even a whole tokenizer.json stored as
	// tokenizer.huggingface.json is a few MiB.
	MaxStringLen = 16 << 20

	// MaxArrayLen is the most elements one metadata array may hold. The
	// largest real arrays are vocabularies (262,144 tokens for Gemma 3) and
	// BPE merges (about 446,000 for o200k-based models).
	MaxArrayLen = 1 << 22

	// MaxMetadataBytes bounds the memory all decoded metadata may take,
	// counted as the Go values cost: each key, string and array element
	// with its header, plus a fixed charge per key/value. Per-item limits
	// alone would still let MaxKV keys of MaxStringLen each ask for a
	// terabyte. A 262,144-token vocabulary with its scores and types, plus
	// 446,000 merges, costs about 25 MiB.
	MaxMetadataBytes = 64 << 20

	// MaxTensors is the most tensor infos a file may declare. Real models
	// hold at most a few thousand (stacked MoE experts are one tensor per
	// layer and projection); legacy files with one tensor per expert reach
	// tens of thousands (128 experts × 35 layers × 3 = 13,440).
	MaxTensors = 1 << 16

	// MaxNameLen is the longest tensor name llama.cpp accepts
	// (GGML_MAX_NAME-1, the name buffer of a ggml_tensor less its NUL).
	MaxNameLen = 63
)

// Charges against MaxMetadataBytes for the Go values a key/value becomes,
// beyond the bytes of its strings and array elements.
const (
	// kvCost is a KV in File.KV plus its entry in the key index.
	kvCost = 64
	// stringCost is a string header, in an array or boxed in a KV's Value.
	stringCost = 16
	// sliceCost is the header of an array's slice, boxed in a KV's Value.
	sliceCost = 24
)
