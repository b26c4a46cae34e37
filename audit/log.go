package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// SyncPolicy says when a Log calls fsync.
type SyncPolicy int

const (
	// SyncEveryEntry fsyncs before Append returns: an acknowledged entry
	// survives power loss. This is the default.
	SyncEveryEntry SyncPolicy = iota
	// SyncBatched fsyncs after BatchEntries unsynced entries, or
	// BatchInterval after the first of them, whichever comes first. Up to
	// that bound of acknowledged entries can be lost on power loss (not on
	// a process crash: they are already in the kernel).
	SyncBatched
	// SyncNone never fsyncs before Close. For tests and benchmarks.
	SyncNone
)

// Options configure Open. The zero value fsyncs every entry and writes no
// checkpoints.
type Options struct {
	Sync          SyncPolicy
	BatchEntries  int           // SyncBatched: default 64
	BatchInterval time.Duration // SyncBatched: default 50ms

	// Signer, if set, signs a Checkpoint every CheckpointEvery entries
	// (default 1024) and on Close, appending it to CheckpointPath(path).
	// On Open, the existing checkpoints are verified against the log with
	// Signer's public key, so a log truncated behind them does not open,
	// and a torn last line of the checkpoint file (a crash while one was
	// written) is cut off. A checkpoint that cannot be written breaks the
	// log (ErrBroken).
	Signer          ed25519.PrivateKey
	CheckpointEvery uint64

	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// logFile is the part of *os.File a Log uses; tests substitute failures.
type logFile interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

// Log is an append-only, hash-chained audit log in a JSON Lines file. It is
// safe for concurrent use: appends are serialized, and every goroutine's
// entries land in one chain.
type Log struct {
	path string
	opts Options

	mu       sync.Mutex // guards everything below
	f        logFile
	unlock   func() error
	cpf      logFile // checkpoint file, nil without a Signer
	seq      uint64
	last     Hash
	lastTS   int64
	size     int64 // bytes of complete entries in the file
	unsynced int
	armed    bool // a batch timer is pending
	lastCP   Checkpoint
	buf      []byte // line buffer, reused
	hashBuf  []byte
	err      error // set when the log is broken or closed
}

// Open opens the log at path, creating it if needed, and verifies it
// before resuming the chain. A torn last line is reported as a
// *TornTailError (call Repair, then Open again); any other problem as the
// error Verify would return. The file is locked against other writers.
// Unless the policy is SyncNone, Open fsyncs the log's directory, so that
// a crash cannot lose the names of the log and its checkpoint file.
func Open(path string, opts *Options) (*Log, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.BatchEntries <= 0 {
		o.BatchEntries = 64
	}
	if o.BatchInterval <= 0 {
		o.BatchInterval = 50 * time.Millisecond
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Signer != nil && len(o.Signer) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit: signer key is %d bytes, want %d", len(o.Signer), ed25519.PrivateKeySize)
	}

	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	unlock, err := lockFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	l := &Log{path: path, opts: o, f: f, unlock: unlock}
	fail := func(err error) (*Log, error) {
		unlock()
		f.Close()
		if l.cpf != nil {
			l.cpf.Close()
		}
		return nil, err
	}

	var vopts VerifyOptions
	var cpComplete int64
	if o.Signer != nil {
		cps, complete, err := readCheckpoints(CheckpointPath(path))
		if err != nil {
			return fail(err)
		}
		cpComplete = complete
		vopts = VerifyOptions{PublicKey: o.Signer.Public().(ed25519.PublicKey), Checkpoints: cps}
		// The latest is the highest seq, wherever it stands in the file:
		// an old signed checkpoint appended again must not be handed out
		// as the last.
		for _, c := range cps {
			if c.Seq >= l.lastCP.Seq {
				l.lastCP = c
			}
		}
	}
	sum, err := verifyReader(io.NewSectionReader(f, 0, 1<<62), vopts)
	if err != nil {
		return fail(err)
	}
	l.seq, l.last, l.lastTS, l.size = sum.LastSeq, sum.LastHash, sum.LastTimestampMs, sum.Bytes
	if o.Signer != nil {
		cpf, err := os.OpenFile(CheckpointPath(path), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fail(err)
		}
		l.cpf = cpf
		if err := cutTornTail(cpf, cpComplete); err != nil {
			return fail(fmt.Errorf("audit: cut the torn last line of %s: %w", CheckpointPath(path), err))
		}
	}
	// Every Open, not only one that creates the files: after a crash
	// between a create and this fsync, the next Open finds the file but
	// its name is still not durable.
	if o.Sync != SyncNone {
		dir := filepath.Dir(path)
		if err := syncDir(dir); err != nil {
			return fail(fmt.Errorf("audit: fsync directory %s: %w", dir, err))
		}
	}
	return l, nil
}

// cutTornTail truncates f to complete bytes if it is longer: a crash while
// a checkpoint was written leaves an incomplete last line, and the next
// checkpoint appended after it would make one malformed line of both, which
// no later Open could read.
func cutTornTail(f *os.File, complete int64) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() == complete {
		return err
	}
	if err := f.Truncate(complete); err != nil {
		return err
	}
	return f.Sync()
}

// syncDir is fsyncDir; tests replace it to watch and fail the call.
var syncDir = fsyncDir

// Path returns the log's file name.
func (l *Log) Path() string { return l.path }

// Head returns the seq and chain hash of the last entry (0 and GenesisHash
// for an empty log).
func (l *Log) Head() (uint64, Hash) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.last
}

// LastCheckpoint returns the newest signed checkpoint, if any. Copy it
// somewhere the log's writer cannot reach to detect truncation later.
func (l *Log) LastCheckpoint() (Checkpoint, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastCP, l.lastCP.Signature != nil
}

// Append adds an entry of kind with payload and returns it. A
// json.RawMessage or []byte payload must be valid JSON and is stored
// compacted; anything else is encoded with encoding/json. The timestamp is
// the clock's, but never earlier than the previous entry's. An entry whose
// line, newline included, would be longer than MaxLineBytes is refused
// with ErrEntryTooLarge before anything is written.
//
// Append is atomic: the line goes to the file in one write, and if that
// write (or, under SyncEveryEntry, the fsync) fails, the file is truncated
// back and the chain does not advance. If even that fails, the log is
// broken and refuses further appends with ErrBroken. Under SyncBatched the
// fsync that a full batch triggers covers earlier entries too; if it fails,
// the entry is written but the log is broken, and Append returns the entry
// with the error. The same holds when a checkpoint due after the entry
// cannot be written.
func (l *Log) Append(kind Kind, payload any) (Entry, error) {
	if !kind.Known() {
		return Entry{}, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	p, err := encodePayload(payload)
	if err != nil {
		return Entry{}, err
	}
	ts := l.opts.Now().UnixMilli()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return Entry{}, l.err
	}
	e := Entry{Seq: l.seq + 1, TimestampMs: max(ts, l.lastTS), Kind: kind, Payload: p, PrevChainHash: l.last}
	if n := lineLen(&e); n > maxLineBytes {
		// The reader rejects such a line, and Repair keeps what it cannot
		// prove torn, so one written would lock the log for ever.
		return Entry{}, fmt.Errorf("%w: its line would be %d bytes, over the limit of %d (MaxLineBytes)", ErrEntryTooLarge, n, maxLineBytes)
	}
	l.hashBuf = appendHashInput(l.hashBuf[:0], e.Seq, e.TimestampMs, e.Kind, e.Payload, e.PrevChainHash)
	e.ChainHash = sha256Sum(l.hashBuf)
	l.buf = append(appendLine(l.buf[:0], &e), '\n')

	if _, err := l.f.Write(l.buf); err != nil {
		return Entry{}, l.rollback("write", err)
	}
	if l.opts.Sync == SyncEveryEntry {
		if err := l.f.Sync(); err != nil {
			return Entry{}, l.rollback("fsync", err)
		}
	}
	l.seq, l.last, l.lastTS = e.Seq, e.ChainHash, e.TimestampMs
	l.size += int64(len(l.buf))

	if l.opts.Sync == SyncBatched {
		l.unsynced++
		if l.unsynced >= l.opts.BatchEntries {
			if err := l.syncLocked(); err != nil {
				return e, err
			}
		} else if !l.armed {
			l.armed = true
			time.AfterFunc(l.opts.BatchInterval, l.timerSync)
		}
	}
	if l.cpf != nil && e.Seq%l.opts.CheckpointEvery == 0 {
		if _, err := l.checkpointLocked(); err != nil {
			return e, err
		}
	}
	return e, nil
}

// rollback truncates a failed append away. Caller holds l.mu.
func (l *Log) rollback(op string, err error) error {
	if terr := l.f.Truncate(l.size); terr != nil {
		l.err = &WriteError{Op: op, Err: errors.Join(err, terr), Broken: true}
		return l.err
	}
	if op == "fsync" {
		// After a failed fsync the kernel may have dropped dirty pages of
		// earlier entries too; trust nothing until the file is reopened
		// and verified.
		l.err = &WriteError{Op: op, Err: err, Broken: true}
		return l.err
	}
	return &WriteError{Op: op, Err: err}
}

// Sync flushes unsynced entries to stable storage.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	return l.syncLocked()
}

// syncLocked fsyncs. Caller holds l.mu.
func (l *Log) syncLocked() error {
	if err := l.f.Sync(); err != nil {
		l.err = &WriteError{Op: "fsync", Err: err, Broken: true}
		return l.err
	}
	l.unsynced = 0
	return nil
}

func (l *Log) timerSync() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = false
	if l.err == nil && l.unsynced > 0 {
		l.syncLocked() // a failure breaks the log; the next Append reports it
	}
}

// WriteCheckpoint signs the current head now, after making the log durable.
// It needs Options.Signer.
func (l *Log) WriteCheckpoint() (Checkpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return Checkpoint{}, l.err
	}
	if l.cpf == nil {
		return Checkpoint{}, errors.New("audit: WriteCheckpoint needs Options.Signer")
	}
	return l.checkpointLocked()
}

// checkpointLocked fsyncs the log, then signs the head and appends the
// checkpoint to the checkpoint file: a checkpoint never names an entry
// that could still be lost. Caller holds l.mu.
func (l *Log) checkpointLocked() (Checkpoint, error) {
	if l.seq == 0 || l.lastCP.Seq == l.seq && l.lastCP.Signature != nil {
		return l.lastCP, nil
	}
	if err := l.syncLocked(); err != nil {
		return Checkpoint{}, err
	}
	cp := SignCheckpoint(l.opts.Signer, l.seq, l.last)
	line, err := json.Marshal(cp)
	if err != nil {
		return Checkpoint{}, err
	}
	// A failed write may have left part of a line, and a failed fsync may
	// have lost earlier ones; either way the checkpoint file is no longer
	// known, and appending to it could make it unreadable. The log stops
	// here; reopening cuts a torn tail and verifies what is left.
	if _, err := l.cpf.Write(append(line, '\n')); err != nil {
		l.err = &WriteError{Op: "checkpoint", Err: err, Broken: true}
		return Checkpoint{}, l.err
	}
	if err := l.cpf.Sync(); err != nil {
		l.err = &WriteError{Op: "checkpoint", Err: err, Broken: true}
		return Checkpoint{}, l.err
	}
	l.lastCP = cp
	return cp, nil
}

// Close writes a final checkpoint (with a Signer), fsyncs and closes the
// file. It is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if errors.Is(l.err, ErrClosed) {
		return nil
	}
	var errs []error
	if l.err == nil {
		if l.cpf != nil {
			_, err := l.checkpointLocked()
			errs = append(errs, err)
		}
		errs = append(errs, l.f.Sync())
	}
	if l.cpf != nil {
		errs = append(errs, l.cpf.Close())
	}
	errs = append(errs, l.unlock(), l.f.Close())
	l.err = ErrClosed
	return errors.Join(errs...)
}

// encodePayload returns payload as compact JSON.
func encodePayload(payload any) ([]byte, error) {
	var raw []byte
	switch p := payload.(type) {
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
		}
		return b, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	return buf.Bytes(), nil
}
