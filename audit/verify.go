package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
)

// MaxLineBytes bounds one line of the log, newline included; a longer line
// is malformed, and Append refuses an entry whose line would be longer.
const MaxLineBytes = 64 << 20

// maxLineBytes is the bound the reader and Append enforce: MaxLineBytes,
// lowered only by tests so that they need not write 64 MiB lines. One
// variable for both keeps writer and reader agreeing on the boundary.
var maxLineBytes = MaxLineBytes

// Summary describes a log that verified.
type Summary struct {
	Entries         int
	LastSeq         uint64 // 0 for an empty log
	LastHash        Hash   // GenesisHash for an empty log
	LastTimestampMs int64
	Bytes           int64 // length of the verified entries, newlines included
	Checkpoints     int   // signed checkpoints checked against the log
}

// VerifyOptions adds signed checkpoints to verification.
type VerifyOptions struct {
	// PublicKey verifies the checkpoints' signatures.
	PublicKey ed25519.PublicKey
	// Checkpoints are checked against the log: each signature must verify,
	// the log must still have the entry at each checkpoint's seq (else
	// ErrTruncated), and that entry must have the checkpoint's chainHash
	// (else ErrBadCheckpoint).
	Checkpoints []Checkpoint
}

// Verify reads the log at path and checks every entry: canonical form,
// chain hashes, consecutive seqs from 1 and timestamps that never go back.
// It returns the first problem as one of the typed errors of this package
// (*ChainError, *SeqGapError, *TimestampError, *MalformedLineError,
// *TornTailError). A missing file is an empty log.
func Verify(path string) (Summary, error) { return VerifyWith(path, VerifyOptions{}) }

// VerifyWith is Verify with signed checkpoints.
func VerifyWith(path string, opts VerifyOptions) (Summary, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return verifyReader(bytes.NewReader(nil), opts)
	}
	if err != nil {
		return Summary{}, err
	}
	defer f.Close()
	return verifyReader(f, opts)
}

// VerifyReader verifies a log read from r; see Verify.
func VerifyReader(r io.Reader, opts VerifyOptions) (Summary, error) { return verifyReader(r, opts) }

func verifyReader(r io.Reader, opts VerifyOptions) (Summary, error) {
	cps, err := prepareCheckpoints(opts)
	if err != nil {
		return Summary{}, err
	}
	var sc scanner
	sum, err := sc.scan(r, cps)
	if err != nil {
		return sum, err
	}
	// Checkpoints past the end of the log mean it was truncated.
	for _, cp := range cps {
		if cp.Seq > sum.LastSeq {
			return sum, &TruncatedError{CheckpointSeq: cp.Seq, LastSeq: sum.LastSeq}
		}
	}
	return sum, nil
}

// prepareCheckpoints checks every signature and sorts by seq.
func prepareCheckpoints(opts VerifyOptions) ([]Checkpoint, error) {
	if len(opts.Checkpoints) == 0 {
		return nil, nil
	}
	if len(opts.PublicKey) != ed25519.PublicKeySize {
		return nil, ErrNoPublicKey
	}
	cps := slices.Clone(opts.Checkpoints)
	for _, cp := range cps {
		if err := cp.Verify(opts.PublicKey); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(cps, func(a, b Checkpoint) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	return cps, nil
}

// scanner walks a log, checking the chain. Its buffers are reused between
// lines, so verifying allocates per file, not per entry.
type scanner struct {
	hashBuf []byte
	long    []byte
}

// scan verifies every line of r and checks the entries at the checkpoints'
// seqs (cps sorted by seq). On error the Summary covers the entries before
// the bad line.
func (sc *scanner) scan(r io.Reader, cps []Checkpoint) (Summary, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	sum := Summary{LastHash: GenesisHash}
	var e Entry
	for lineNo := 1; ; lineNo++ {
		line, err := sc.readLine(br)
		if err == io.EOF {
			if len(line) > 0 {
				return sum, &TornTailError{Line: lineNo, Offset: sum.Bytes, Length: len(line)}
			}
			return sum, nil
		}
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				return sum, &MalformedLineError{Line: lineNo, Offset: sum.Bytes, Reason: "line longer than MaxLineBytes"}
			}
			return sum, err
		}
		body := line[:len(line)-1]
		if len(body) == 0 {
			return sum, &MalformedLineError{Line: lineNo, Offset: sum.Bytes, Reason: "empty line"}
		}
		if reason := parseLine(body, &e); reason != "" {
			return sum, &MalformedLineError{Line: lineNo, Offset: sum.Bytes, Reason: reason}
		}
		if err := sc.check(&e, &sum, lineNo); err != nil {
			return sum, err
		}
		for len(cps) > 0 && cps[0].Seq <= e.Seq {
			if cps[0].Seq == e.Seq && cps[0].ChainHash != e.ChainHash {
				return sum, &CheckpointError{Seq: e.Seq, Reason: "log's chainHash " + e.ChainHash.String() +
					" differs from the signed " + cps[0].ChainHash.String() + ": the log was rewritten"}
			}
			cps = cps[1:]
			sum.Checkpoints++
		}
		sum.Entries++
		sum.LastSeq = e.Seq
		sum.LastHash = e.ChainHash
		sum.LastTimestampMs = e.TimestampMs
		sum.Bytes += int64(len(line))
	}
}

// check verifies e against the chain so far. The entry's own hash is
// checked first, so a tampered field is reported as a broken chain; a seq
// gap with intact hashes means entries were removed.
func (sc *scanner) check(e *Entry, sum *Summary, lineNo int) error {
	sc.hashBuf = appendHashInput(sc.hashBuf[:0], e.Seq, e.TimestampMs, e.Kind, e.Payload, e.PrevChainHash)
	if Hash(sha256.Sum256(sc.hashBuf)) != e.ChainHash {
		return &ChainError{Line: lineNo, Seq: e.Seq, Reason: "chainHash does not match the entry's contents"}
	}
	if want := sum.LastSeq + 1; e.Seq != want {
		return &SeqGapError{Line: lineNo, Expected: want, Got: e.Seq}
	}
	if e.PrevChainHash != sum.LastHash {
		return &ChainError{Line: lineNo, Seq: e.Seq, Reason: "prevChainHash does not match the previous entry's chainHash"}
	}
	if sum.Entries > 0 && e.TimestampMs < sum.LastTimestampMs {
		return &TimestampError{Line: lineNo, Seq: e.Seq, Prev: sum.LastTimestampMs, Got: e.TimestampMs}
	}
	return nil
}

var errLineTooLong = errors.New("audit: line too long")

// readLine returns the next line including its '\n', or the unterminated
// rest of the input with io.EOF. The slice is valid until the next call.
func (sc *scanner) readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	sc.long = append(sc.long[:0], line...)
	for {
		line, err = br.ReadSlice('\n')
		sc.long = append(sc.long, line...)
		if len(sc.long) > maxLineBytes {
			return nil, errLineTooLong
		}
		if err != bufio.ErrBufferFull {
			return sc.long, err
		}
	}
}
