package genome

import (
	"errors"
	"fmt"
)

// Errors about names the manager does not know.
var (
	// ErrUnknownArtifact is returned when an ArtifactID was never registered.
	ErrUnknownArtifact = errors.New("genome: unknown artifact")
	// ErrUnknownPersona is returned when a PersonaID was never registered.
	ErrUnknownPersona = errors.New("genome: unknown persona")
	// ErrBadPage is returned when a PageRef does not describe bytes of its
	// artifact: a range past the end, an expert the model does not have.
	ErrBadPage = errors.New("genome: bad page")
	// ErrNoExperts is returned when Expert pages are asked of an artifact
	// that has no expert tensors.
	ErrNoExperts = errors.New("genome: artifact has no experts")
	// ErrDuplicate is returned when an artifact or persona is registered twice.
	ErrDuplicate = errors.New("genome: already registered")
)

// Errors about tiers and capacity.
var (
	// ErrUnconfiguredTier is returned (inside *UnconfiguredTierError) when an
	// operation names a tier the manager was not configured with, such as
	// Fast on a CPU build.
	ErrUnconfiguredTier = errors.New("genome: tier not configured")
	// ErrNoEvictionCandidate is returned (inside *NoEvictionCandidateError)
	// when a tier is full and every page it could evict is pinned.
	ErrNoEvictionCandidate = errors.New("genome: no eviction candidate")
	// ErrPageTooLarge is returned when a page is larger than the whole
	// limit of the tier it should go to.
	ErrPageTooLarge = errors.New("genome: page larger than tier limit")
	// ErrBudgetTooSmall is returned by Budget for a budget smaller than one
	// OS page: every tier limit would round down to 0, which means no limit.
	ErrBudgetTooSmall = errors.New("genome: budget smaller than one OS page")
	// ErrMemlockLimit is returned by NewLocal when a Warm tier is
	// configured but RLIMIT_MEMLOCK leaves this process no OS page to lock.
	ErrMemlockLimit = errors.New("genome: RLIMIT_MEMLOCK leaves nothing to lock")
	// ErrNotPinned is returned when Unpin is called on a page with no pins.
	ErrNotPinned = errors.New("genome: page not pinned")
	// ErrPinned is returned when a page cannot move because it is pinned.
	ErrPinned = errors.New("genome: page pinned")
	// ErrInUse is returned when an artifact cannot be frozen or removed
	// because pages of it are held in memory or mapped by someone else.
	ErrInUse = errors.New("genome: artifact in use")
	// ErrClosed is returned by a manager after Close.
	ErrClosed = errors.New("genome: manager closed")
	// ErrFlushInSubscriber is returned when Flush is called from a
	// subscriber of the manager's events: the events queued behind the one
	// being handled cannot be published until the handler returns.
	ErrFlushInSubscriber = errors.New("genome: Flush called from an event subscriber")
)

// Errors about permissions.
var (
	// ErrAccessDenied is returned (inside *AccessDeniedError) when an actor
	// touches a page it does not own or a region it has no right to.
	ErrAccessDenied = errors.New("genome: access denied")
)

// Errors about files, mappings and archives.
var (
	// ErrCorruptArchive is returned (inside *CorruptArchiveError) when a
	// Frozen archive fails its checksum or cannot be decoded. No bytes of a
	// corrupt archive are ever written to the thawed file's final path.
	ErrCorruptArchive = errors.New("genome: corrupt archive")
	// ErrNoMapping is returned when no mapping of a file is found in
	// /proc/self/maps.
	ErrNoMapping = errors.New("genome: no mapping of file")
	// ErrUnsupported is returned on platforms without the Linux memory
	// calls the genome measures with (mincore, madvise, fadvise).
	ErrUnsupported = errors.New("genome: unsupported on this platform")
)

// UnconfiguredTierError reports an operation on a tier the manager was not
// configured with.
type UnconfiguredTierError struct {
	Role TierRole
	Op   string
}

func (e *UnconfiguredTierError) Error() string {
	return fmt.Sprintf("genome: %s: tier %s not configured", e.Op, e.Role)
}

// Is makes errors.Is(err, ErrUnconfiguredTier) true.
func (e *UnconfiguredTierError) Is(target error) bool { return target == ErrUnconfiguredTier }

// NoEvictionCandidateError reports a full tier whose pages are all pinned
// (or too few unpinned bytes to make room).
type NoEvictionCandidateError struct {
	Role     TierRole
	Need     int64 // bytes the incoming page needs
	Free     int64 // bytes free in the tier, evictable ones included
	Pinned   int64 // bytes held by pinned pages
	Incoming PageRef
}

func (e *NoEvictionCandidateError) Error() string {
	return fmt.Sprintf("genome: tier %s full: need %d bytes for %s, %d can be freed, %d pinned",
		e.Role, e.Need, e.Incoming, e.Free, e.Pinned)
}

// Is makes errors.Is(err, ErrNoEvictionCandidate) true.
func (e *NoEvictionCandidateError) Is(target error) bool { return target == ErrNoEvictionCandidate }

// AccessDeniedError carries the denial that was published on the bus.
type AccessDeniedError struct {
	Denial AccessDenied
	// RecordErr is the denial recorder's error (SetDenialRecorder) when it
	// could not record the denial: the audit log does not hold it.
	RecordErr error
	// PublishErr is the publisher's error when the denial could not be
	// published; nil when it was (or when no publisher is set, which
	// Stats.UnpublishedDenials counts).
	PublishErr error
}

func (e *AccessDeniedError) Error() string {
	d := e.Denial
	s := fmt.Sprintf("genome: access denied: persona %s %s %s (%s): %s", d.Actor, d.Op, d.Page, d.Region, d.Reason)
	if e.RecordErr != nil {
		s += fmt.Sprintf(" (not recorded: %v)", e.RecordErr)
	}
	if e.PublishErr != nil {
		s += fmt.Sprintf(" (not published: %v)", e.PublishErr)
	}
	return s
}

// Is makes errors.Is(err, ErrAccessDenied) true.
func (e *AccessDeniedError) Is(target error) bool { return target == ErrAccessDenied }

// CorruptArchiveError names the archive that failed and why.
type CorruptArchiveError struct {
	Path   string
	Reason string
	Err    error // the decoder's error, if any
}

func (e *CorruptArchiveError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("genome: corrupt archive %s: %s: %v", e.Path, e.Reason, e.Err)
	}
	return fmt.Sprintf("genome: corrupt archive %s: %s", e.Path, e.Reason)
}

// Is makes errors.Is(err, ErrCorruptArchive) true.
func (e *CorruptArchiveError) Is(target error) bool { return target == ErrCorruptArchive }

// Unwrap returns the decoder's error.
func (e *CorruptArchiveError) Unwrap() error { return e.Err }

// SyscallError is a failed memory syscall with the range it acted on.
type SyscallError struct {
	Op   string // "mlock", "madvise(MADV_POPULATE_READ)", ...
	Addr uintptr
	Len  int64
	Err  error
}

func (e *SyscallError) Error() string {
	return fmt.Sprintf("genome: %s [%#x+%d]: %v", e.Op, e.Addr, e.Len, e.Err)
}

// Unwrap returns the errno.
func (e *SyscallError) Unwrap() error { return e.Err }
