package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Checkpoint is an ed25519 signature over (seq, chainHash): whoever holds
// the public key can check that the log once had this entry, so a log cut
// short after it, or rewritten, is detected. Checkpoints are kept outside
// the log (in CheckpointPath(log), and wherever else their holder copies
// them) precisely so that truncating the log does not remove them.
type Checkpoint struct {
	Seq       uint64 `json:"seq"`
	ChainHash Hash   `json:"chainHash"`
	Signature []byte `json:"signature"` // 64 bytes, base64 in JSON
}

// checkpointDomain separates checkpoint signatures from any other use of
// the key.
const checkpointDomain = "strata/audit/v1/checkpoint\x00"

// CheckpointMessage returns the bytes a checkpoint signs:
//
//	"strata/audit/v1/checkpoint" 0x00 || uint64be(seq) || chainHash (32 bytes)
func CheckpointMessage(seq uint64, h Hash) []byte {
	msg := make([]byte, 0, len(checkpointDomain)+8+len(h))
	msg = append(msg, checkpointDomain...)
	msg = binary.BigEndian.AppendUint64(msg, seq)
	return append(msg, h[:]...)
}

// SignCheckpoint signs (seq, h) with key.
func SignCheckpoint(key ed25519.PrivateKey, seq uint64, h Hash) Checkpoint {
	return Checkpoint{Seq: seq, ChainHash: h, Signature: ed25519.Sign(key, CheckpointMessage(seq, h))}
}

// Verify checks c's signature with pub.
func (c Checkpoint) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadPublicKey, len(pub), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(pub, CheckpointMessage(c.Seq, c.ChainHash), c.Signature) {
		return &CheckpointError{Seq: c.Seq, Reason: "signature does not verify with the public key"}
	}
	return nil
}

// CheckpointPath returns the file in which a Log keeps the checkpoints of
// the log at logPath: logPath + ".checkpoints", one JSON object per line.
func CheckpointPath(logPath string) string { return logPath + ".checkpoints" }

// ReadCheckpoints reads a checkpoint file. A missing file has none. An
// incomplete last line (a crash while one was written) is ignored: a
// checkpoint counts only once its newline is on disk. Signatures are not
// checked here; VerifyWith checks them.
func ReadCheckpoints(path string) ([]Checkpoint, error) {
	cps, _, err := readCheckpoints(path)
	return cps, err
}

// readCheckpoints is ReadCheckpoints that also returns the length of the
// complete lines, where Open cuts off a torn tail before appending.
func readCheckpoints(path string) (cps []Checkpoint, complete int64, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		var c Checkpoint
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, 0, fmt.Errorf("audit: %s line %d: %w", path, n, err)
		}
		// One checkpoint a line, in the form the Log writes it: nothing
		// after the object, no keys in another case.
		if canon, err := json.Marshal(c); err != nil || !bytes.Equal(canon, sc.Bytes()) {
			return nil, 0, fmt.Errorf("audit: %s line %d: not a checkpoint as the log writes one", path, n)
		}
		cps = append(cps, c)
	}
	return cps, int64(len(data)), sc.Err()
}

// ParsePublicKey parses an ed25519 public key written as 64 hex digits or
// standard base64. If s names a readable file, the key is read from it.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	if data, err := os.ReadFile(s); err == nil {
		s = string(data)
	}
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(b), nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(b), nil
	}
	return nil, fmt.Errorf("%w: want %d bytes as hex or base64, or a file holding them", ErrBadPublicKey, ed25519.PublicKeySize)
}
