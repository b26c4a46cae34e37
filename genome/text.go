package genome

import (
	"fmt"

	"github.com/google/uuid"
)

// The genome's IDs and enumerations implement encoding.TextMarshaler, so
// their JSON forms — what the bus carries across a process boundary and
// the audit log records — are UUID strings and names ("warm", "expert",
// "read|page") rather than byte arrays and numbers.

// MarshalText returns the canonical UUID string.
func (p PersonaID) MarshalText() ([]byte, error) { return uuid.UUID(p).MarshalText() }

// UnmarshalText parses a UUID string.
func (p *PersonaID) UnmarshalText(b []byte) error { return (*uuid.UUID)(p).UnmarshalText(b) }

// MarshalText returns the canonical UUID string.
func (a ArtifactID) MarshalText() ([]byte, error) { return uuid.UUID(a).MarshalText() }

// UnmarshalText parses a UUID string.
func (a *ArtifactID) UnmarshalText(b []byte) error { return (*uuid.UUID)(a).UnmarshalText(b) }

// MarshalText returns the tier's name.
func (r TierRole) MarshalText() ([]byte, error) { return nameOf(r, r.String(), int(r) < numTiers) }

// UnmarshalText parses a tier name.
func (r *TierRole) UnmarshalText(b []byte) error { return parseName(r, b, "tier", numTiers) }

// MarshalText returns the kind's name.
func (k PageKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a page kind name.
func (k *PageKind) UnmarshalText(b []byte) error { return parseName(k, b, "page kind", 8) }

// MarshalText returns the region's name.
func (r GenomeRegion) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a region name.
func (r *GenomeRegion) UnmarshalText(b []byte) error {
	return parseName(r, b, "region", int(numRegions))
}

// MarshalText returns the operations joined with '|'.
func (o Op) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText parses operations joined with '|', or "none".
func (o *Op) UnmarshalText(b []byte) error { return parseName(o, b, "operation set", int(OpAll)+1) }

// MarshalText returns the reason's name.
func (r EvictionReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a reason name.
func (r *EvictionReason) UnmarshalText(b []byte) error { return parseName(r, b, "eviction reason", 8) }

// MarshalText returns the policy's name.
func (p EvictionPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses a policy name.
func (p *EvictionPolicy) UnmarshalText(b []byte) error { return parseName(p, b, "eviction policy", 8) }

func nameOf[T any](_ T, name string, ok bool) ([]byte, error) {
	if !ok {
		return nil, fmt.Errorf("genome: %s is not a valid value", name)
	}
	return []byte(name), nil
}

// parseName sets *v to the value in [0, n) whose String is b.
func parseName[T ~uint8](v *T, b []byte, what string, n int) error {
	for i := 0; i < n; i++ {
		if fmt.Sprint(T(i)) == string(b) {
			*v = T(i)
			return nil
		}
	}
	return fmt.Errorf("genome: unknown %s %q", what, b)
}
