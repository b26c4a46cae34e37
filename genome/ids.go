package genome

import "github.com/google/uuid"

// PersonaID names a persona: a tenant of the engine whose pages and
// permissions the genome tracks. It is a distinct type from ArtifactID so
// that swapping the two in a call does not compile.
type PersonaID uuid.UUID

// ArtifactID names an artifact: a model file, an adapter, an archive.
type ArtifactID uuid.UUID

// NewPersonaID returns a random (version 4) PersonaID.
func NewPersonaID() PersonaID { return PersonaID(uuid.New()) }

// NewArtifactID returns a random (version 4) ArtifactID.
func NewArtifactID() ArtifactID { return ArtifactID(uuid.New()) }

// ParsePersonaID parses the textual form of a UUID as a PersonaID.
func ParsePersonaID(s string) (PersonaID, error) {
	u, err := uuid.Parse(s)
	return PersonaID(u), err
}

// ParseArtifactID parses the textual form of a UUID as an ArtifactID.
func ParseArtifactID(s string) (ArtifactID, error) {
	u, err := uuid.Parse(s)
	return ArtifactID(u), err
}

// String returns the canonical textual form of the UUID.
func (p PersonaID) String() string { return uuid.UUID(p).String() }

// IsZero reports whether p is the zero (nil) UUID, which names no persona.
func (p PersonaID) IsZero() bool { return p == PersonaID{} }

// String returns the canonical textual form of the UUID.
func (a ArtifactID) String() string { return uuid.UUID(a).String() }

// IsZero reports whether a is the zero (nil) UUID, which names no artifact.
func (a ArtifactID) IsZero() bool { return a == ArtifactID{} }
