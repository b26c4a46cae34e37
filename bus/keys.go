package bus

// Canonical artifact keys: the wire contract between Strata's modules (see
// DESIGN.md, "Bus"). Keys follow "<module>/<surface>.<event>".
const (
	KeyPageFault          = "genome/working_set.page_fault"
	KeyEviction           = "genome/working_set.eviction"
	KeyAccessDenied       = "genome/working_set.access_denied"
	KeyLLMRequest         = "inference/llm.request"
	KeyLLMFirstToken      = "inference/llm.first_token"
	KeyLLMComplete        = "inference/llm.complete"
	KeyResidencyFault     = "inference/llm.residency_fault"
	KeyAuditEntryRecorded = "audit/log.entry_recorded"
)

// Artifact keys for the audited decisions other than access denial. The audit
// Recorder subscribes to these and to KeyAccessDenied.
const (
	// KeyRefusal is published when inference refuses a request.
	KeyRefusal = "inference/llm.refusal"
	// KeyGovernorOverride is published when a resource governor overrides a
	// policy decision (for example, admits a page over budget).
	KeyGovernorOverride = "governor/policy.override"
	// KeyFederationPolicyDrift is published when a federated peer's policy
	// no longer matches the local one.
	KeyFederationPolicyDrift = "federation/policy.drift"
)

// Grammar
//
// A segment character is an ASCII letter, digit, '_' or '-'.
//
// An event name is one or more non-empty segments joined by ':'. A pattern
// is an event name in which a whole segment may be "*" (exactly one
// segment) or, as the last segment only, ">" (one or more segments).
//
// An artifact key is <module> '/' <surface> '.' <event>, each part one or
// more segment characters. A Prefix selector is any string that is the
// start of some artifact key, including the empty string, which matches
// every artifact key.

// isSegChar reports whether c may appear in a segment.
func isSegChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// keyShape classifies a published key.
type keyShape uint8

const (
	shapeInvalid keyShape = iota
	shapeEvent
	shapeArtifact
)

// classifyKey returns the shape of a published key, or a *KeyError saying
// why it is neither an event name nor an artifact key. A key containing '/'
// is judged as an artifact key, any other key as an event name.
func classifyKey(key string) (keyShape, error) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			if err := checkArtifact(key, true, ErrInvalidKey); err != nil {
				return shapeInvalid, err
			}
			return shapeArtifact, nil
		}
	}
	if err := checkColon(key, false, ErrInvalidKey); err != nil {
		return shapeInvalid, err
	}
	return shapeEvent, nil
}

// ValidEventName reports, as an error wrapping ErrInvalidKey, why name is
// not a valid event name; it returns nil for a valid one.
func ValidEventName(name string) error { return checkColon(name, false, ErrInvalidKey) }

// ValidPattern reports, as an error wrapping ErrInvalidPattern, why pattern
// is not a valid event pattern; it returns nil for a valid one.
func ValidPattern(pattern string) error { return checkColon(pattern, true, ErrInvalidPattern) }

// ValidArtifactKey reports, as an error wrapping ErrInvalidKey, why key is
// not a valid artifact key; it returns nil for a valid one.
func ValidArtifactKey(key string) error { return checkArtifact(key, true, ErrInvalidKey) }

// checkColon validates an event name, or a pattern when wild is set.
func checkColon(s string, wild bool, sentinel error) error {
	what := "event name"
	if wild {
		what = "pattern"
	}
	bad := func(pos int, reason string) error {
		return &KeyError{What: what, Key: s, Pos: pos, Reason: reason, Err: sentinel}
	}
	if s == "" {
		return bad(0, "empty")
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != ':' {
			continue
		}
		seg := s[start:i]
		switch {
		case seg == "":
			return bad(start, "empty segment")
		case wild && seg == "*":
		case wild && seg == ">":
			if i != len(s) {
				return bad(start, `">" must be the last segment`)
			}
		default:
			for j := 0; j < len(seg); j++ {
				c := seg[j]
				if isSegChar(c) {
					continue
				}
				switch {
				case c == '*' || c == '>':
					if wild {
						return bad(start+j, "wildcard must be a whole segment")
					}
					return bad(start+j, "wildcard in a published name")
				case c == '/' || c == '.':
					return bad(start+j, "'/' and '.' belong to artifact keys, not event names")
				default:
					return bad(start+j, "bad character "+quoteByte(c))
				}
			}
		}
		start = i + 1
	}
	return nil
}

// checkArtifact validates an artifact key, or a prefix of one when full is
// false.
func checkArtifact(s string, full bool, sentinel error) error {
	what := "artifact key"
	if !full {
		what = "prefix"
	}
	bad := func(pos int, reason string) error {
		return &KeyError{What: what, Key: s, Pos: pos, Reason: reason, Err: sentinel}
	}
	// part 0: module, 1: surface, 2: event; n counts characters in the part.
	part, n := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isSegChar(c):
			n++
		case c == '/' && part == 0:
			if n == 0 {
				return bad(i, "empty module before '/'")
			}
			part, n = 1, 0
		case c == '.' && part == 1:
			if n == 0 {
				return bad(i, "empty surface before '.'")
			}
			part, n = 2, 0
		case c == '/':
			return bad(i, "more than one '/'")
		case c == '.' && part == 0:
			return bad(i, "'.' before the '/' that ends the module")
		case c == '.':
			return bad(i, "more than one '.' after the '/'")
		case c == ':' || c == '*' || c == '>':
			return bad(i, quoteByte(c)+" belongs to event names and patterns, not artifact keys")
		default:
			return bad(i, "bad character "+quoteByte(c))
		}
	}
	if !full {
		return nil
	}
	switch {
	case s == "":
		return bad(0, "empty")
	case part == 0:
		return bad(len(s), "missing '/' after the module")
	case part == 1:
		return bad(len(s), "missing '.' between surface and event")
	case n == 0:
		return bad(len(s), "empty event after '.'")
	}
	return nil
}

func quoteByte(c byte) string {
	const hex = "0123456789abcdef"
	if c >= 0x20 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	return `'\x` + string(hex[c>>4]) + string(hex[c&15]) + "'"
}
