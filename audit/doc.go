// Package audit is Strata's tamper-evident audit log.
//
// A Log is a JSON Lines file of Entry records, each line in one canonical
// form (see Entry). Entries are chained: each carries the SHA-256 ChainHash
// of its own fields and of the previous entry's hash (the first entry's
// prevChainHash is GenesisHash, 64 zeros), so changing, inserting, removing
// or reordering any entry breaks the chain from that point. The hash input
// is domain-separated and length-prefixed (see ChainHash) and pinned by the
// known-answer vectors in testdata/chain_vectors.json.
//
// Open verifies a log before resuming its chain. Append writes one line in
// one write and, if the write fails, truncates it away, so neither the file
// nor the chain advances; an entry whose line would be longer than
// MaxLineBytes, which the reader rejects, is refused (ErrEntryTooLarge). A
// crash in the middle of a write leaves a torn last line; Open and Verify
// report it (ErrTornTail) and Repair truncates it, keeping every complete
// entry. Durability is a SyncPolicy: fsync every
// entry, or batched with a bound on entries and time.
//
// A plain hash chain cannot show that its tail was cut off. With a Signer,
// a Log also writes signed checkpoints, ed25519 signatures over (seq,
// chainHash), every CheckpointEvery entries and on Close. Anyone with the
// public key and a checkpoint can tell, with VerifyWith, that the log still
// reaches that entry and was not rewritten before it.
//
// Recorder is a bus module that turns the artifacts in RecordedKeys into
// entries and announces each one under bus.KeyAuditEntryRecorded. Access
// denials can also reach it on a path that never drops them:
// Recorder.RecordDenial, called by the code that denies, writes the entry
// before it returns (see Recorder). The command
// "strata audit verify FILE [-pubkey K]" checks a log from the shell.
package audit
