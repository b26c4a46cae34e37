package audit

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
)

// Kind names what an entry records. It is kebab-case on the wire.
type Kind string

// The kinds Append accepts.
const (
	// KindRefusal records a refused inference request.
	KindRefusal Kind = "refusal"
	// KindGovernorOverride records a governor overriding a policy decision.
	KindGovernorOverride Kind = "governor-override"
	// KindFederationPolicyDrift records a peer's policy drifting from ours.
	KindFederationPolicyDrift Kind = "federation-policy-drift"
	// KindAccessDenied records a denied working-set access.
	KindAccessDenied Kind = "access-denied"
)

// Known reports whether k is one of the Kind constants.
func (k Kind) Known() bool {
	switch k {
	case KindRefusal, KindGovernorOverride, KindFederationPolicyDrift, KindAccessDenied:
		return true
	}
	return false
}

// validKindSyntax reports whether k is kebab-case: lower-case letters and
// digits in words joined by single hyphens. The reader accepts any such
// kind, so a log written by a newer version still verifies.
func validKindSyntax(k []byte) bool {
	if len(k) == 0 || len(k) > 64 || k[0] == '-' || k[len(k)-1] == '-' {
		return false
	}
	for i, c := range k {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && k[i-1] != '-':
		default:
			return false
		}
	}
	return true
}

// Entry is one record of the log. On disk it is one line of JSON in
// canonical form, fields in this order, no spaces, hashes in lower-case hex:
//
//	{"seq":1,"timestampMs":1700000000000,"kind":"access-denied","payload":{...},"chainHash":"…","prevChainHash":"…"}
type Entry struct {
	Seq           uint64          `json:"seq"`
	TimestampMs   int64           `json:"timestampMs"`
	Kind          Kind            `json:"kind"`
	Payload       json.RawMessage `json:"payload"`
	ChainHash     Hash            `json:"chainHash"`
	PrevChainHash Hash            `json:"prevChainHash"`
}

const (
	linePrefix   = `{"seq":`
	lineTS       = `,"timestampMs":`
	lineKind     = `,"kind":"`
	linePayload  = `","payload":`
	lineChain    = `,"chainHash":"`
	linePrev     = `","prevChainHash":"`
	lineEnd      = `"}`
	lineSuffixLn = len(lineChain) + 64 + len(linePrev) + 64 + len(lineEnd)
)

// appendLine appends e in canonical form, without the newline.
func appendLine(dst []byte, e *Entry) []byte {
	dst = append(dst, linePrefix...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, lineTS...)
	dst = strconv.AppendInt(dst, e.TimestampMs, 10)
	dst = append(dst, lineKind...)
	dst = append(dst, e.Kind...)
	dst = append(dst, linePayload...)
	dst = append(dst, e.Payload...)
	dst = append(dst, lineChain...)
	dst = hex.AppendEncode(dst, e.ChainHash[:])
	dst = append(dst, linePrev...)
	dst = hex.AppendEncode(dst, e.PrevChainHash[:])
	return append(dst, lineEnd...)
}

// lineLen returns the length of e's line in canonical form, newline
// included, without building it: Append checks it against MaxLineBytes
// before hashing or copying a payload it would refuse.
func lineLen(e *Entry) int {
	var num [20]byte // fits -9223372036854775808
	return len(linePrefix) + len(strconv.AppendUint(num[:0], e.Seq, 10)) +
		len(lineTS) + len(strconv.AppendInt(num[:0], e.TimestampMs, 10)) +
		len(lineKind) + len(e.Kind) + len(linePayload) + len(e.Payload) + lineSuffixLn + 1
}

// MarshalLine returns e in canonical form followed by a newline.
func (e *Entry) MarshalLine() []byte { return append(appendLine(nil, e), '\n') }

// parseLine parses one canonical line (without its newline) into e. The
// parser accepts exactly what appendLine writes, so any change to a line's
// bytes either fails here or changes a hashed field. e.Payload aliases
// line. It returns a reason on failure.
func parseLine(line []byte, e *Entry) (reason string) {
	rest, ok := cutPrefix(line, linePrefix)
	if !ok {
		return `does not start with {"seq":`
	}
	var n int
	if e.Seq, n, ok = parseUint(rest); !ok {
		return "seq is not a canonical unsigned integer"
	}
	if rest, ok = cutPrefix(rest[n:], lineTS); !ok {
		return `"timestampMs" does not follow seq`
	}
	neg := len(rest) > 0 && rest[0] == '-'
	if neg {
		rest = rest[1:]
	}
	u, n, ok := parseUint(rest)
	switch {
	case !ok, neg && u == 0, !neg && u > 1<<63-1, neg && u > 1<<63:
		return "timestampMs is not a canonical 64-bit integer"
	}
	e.TimestampMs = int64(u)
	if neg {
		e.TimestampMs = -int64(u-1) - 1
	}
	if rest, ok = cutPrefix(rest[n:], lineKind); !ok {
		return `"kind" does not follow timestampMs`
	}
	end := 0
	for end < len(rest) && rest[end] != '"' {
		end++
	}
	if !validKindSyntax(rest[:end]) {
		return "kind is not kebab-case"
	}
	e.Kind = internKind(rest[:end])
	if rest, ok = cutPrefix(rest[end:], linePayload); !ok {
		return `"payload" does not follow kind`
	}
	if len(rest) < lineSuffixLn {
		return "line too short for chainHash and prevChainHash"
	}
	payload, tail := rest[:len(rest)-lineSuffixLn], rest[len(rest)-lineSuffixLn:]
	if len(payload) == 0 || isSpace(payload[0]) || isSpace(payload[len(payload)-1]) || !json.Valid(payload) {
		return "payload is not compact JSON"
	}
	e.Payload = payload
	if tail, ok = cutPrefix(tail, lineChain); !ok {
		return `"chainHash" does not follow payload`
	}
	if !decodeLowerHex(e.ChainHash[:], tail[:64]) {
		return "chainHash is not 64 lower-case hex digits"
	}
	if tail, ok = cutPrefix(tail[64:], linePrev); !ok {
		return `"prevChainHash" does not follow chainHash`
	}
	if !decodeLowerHex(e.PrevChainHash[:], tail[:64]) {
		return "prevChainHash is not 64 lower-case hex digits"
	}
	if string(tail[64:]) != lineEnd {
		return `line does not end with "}`
	}
	return ""
}

// internKind returns the constant for a known kind, so that reading a log
// does not allocate a string per entry.
func internKind(b []byte) Kind {
	switch string(b) {
	case string(KindAccessDenied):
		return KindAccessDenied
	case string(KindRefusal):
		return KindRefusal
	case string(KindGovernorOverride):
		return KindGovernorOverride
	case string(KindFederationPolicyDrift):
		return KindFederationPolicyDrift
	}
	return Kind(b)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// parseUint parses a canonical decimal (no sign, no leading zeros) at the
// start of b and returns its value and length.
func parseUint(b []byte) (v uint64, n int, ok bool) {
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		d := uint64(b[n] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, 0, false // overflow
		}
		v = v*10 + d
		n++
	}
	if n == 0 || n > 1 && b[0] == '0' {
		return 0, 0, false
	}
	return v, n, true
}
