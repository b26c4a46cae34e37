package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Hash is a SHA-256 chain hash. It is written as 64 lower-case hex digits.
type Hash [sha256.Size]byte

// String returns h as 64 lower-case hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText returns h as lower-case hex.
func (h Hash) MarshalText() ([]byte, error) {
	b := make([]byte, 2*len(h))
	hex.Encode(b, h[:])
	return b, nil
}

// UnmarshalText parses 64 lower-case hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash parses 64 lower-case hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if !decodeLowerHex(h[:], []byte(s)) {
		return Hash{}, fmt.Errorf("audit: hash %q is not 64 lower-case hex digits", s)
	}
	return h, nil
}

// decodeLowerHex decodes exactly 2*len(dst) lower-case hex digits from src.
// Upper case is refused so that every hash has one spelling.
func decodeLowerHex(dst, src []byte) bool {
	if len(src) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHex(src[2*i])
		lo, ok2 := fromHex(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// GenesisHash is the prevChainHash of the first entry: 32 zero bytes,
// written as 64 zeros.
var GenesisHash Hash

// entryDomain separates entry hashes from every other use of SHA-256.
const entryDomain = "strata/audit/v1/entry\x00"

// ChainHash returns the chain hash of an entry:
//
//	chainHash = SHA-256(
//	    "strata/audit/v1/entry" 0x00        22-byte domain tag
//	    uint64be(seq)                         8 bytes
//	    uint64be(timestampMs)                 8 bytes, two's complement
//	    uint64be(len(kind))    kind           length-prefixed UTF-8
//	    uint64be(len(payload)) payload        length-prefixed, the exact
//	                                          JSON bytes of the line
//	    prevChainHash                         32 bytes
//	)
//
// Every variable-length field carries its length, so no two different
// entries encode to the same bytes, and the domain tag keeps these hashes
// distinct from checkpoint signatures and any other SHA-256 in the system.
// The known-answer vectors in testdata/chain_vectors.json pin it.
func ChainHash(seq uint64, timestampMs int64, kind Kind, payload []byte, prev Hash) Hash {
	buf := appendHashInput(make([]byte, 0, hashInputLen(kind, payload)), seq, timestampMs, kind, payload, prev)
	return sha256.Sum256(buf)
}

func hashInputLen(kind Kind, payload []byte) int {
	return len(entryDomain) + 8 + 8 + 8 + len(kind) + 8 + len(payload) + len(Hash{})
}

// appendHashInput appends the encoding ChainHash hashes to dst.
func appendHashInput(dst []byte, seq uint64, timestampMs int64, kind Kind, payload []byte, prev Hash) []byte {
	dst = append(dst, entryDomain...)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(timestampMs))
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(kind)))
	dst = append(dst, kind...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(payload)))
	dst = append(dst, payload...)
	return append(dst, prev[:]...)
}

func sha256Sum(b []byte) Hash { return sha256.Sum256(b) }
