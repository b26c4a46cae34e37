package genome

import (
	"context"
	"errors"
	"testing"
)

// stubAllowance makes the manager see a process that may lock n more
// bytes (limited) or any amount (!limited), for the rest of the test.
func stubAllowance(tb testing.TB, n int64, limited bool) {
	tb.Helper()
	old := lockAllowance
	lockAllowance = func() (int64, bool, error) { return n, limited, nil }
	tb.Cleanup(func() { lockAllowance = old })
}

// TestFailedLockRollsBack fails the third mlock of a page-in that takes
// four (4 MiB chunks), and checks that the two chunks already locked, and
// the failed one, are unlocked again, all but the OS page a Warm neighbour
// shares, which must stay locked. VmLck is the kernel's word on it.
func TestFailedLockRollsBack(t *testing.T) {
	fx := newFixture(t, 16*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	start := lockedNow(t)
	neighbour := RangePage(fx.art, 0, mib+100) // ends inside the OS page at 1 MiB
	fx.pageIn(t, neighbour)
	before := lockedNow(t)

	errInjected := errors.New("injected mlock failure")
	calls := 0
	sysMlockFn = func(addr uintptr, n int64) error {
		calls++
		if calls == 3 {
			return errInjected
		}
		return sysMlock(addr, n)
	}
	t.Cleanup(func() { sysMlockFn = sysMlock })
	big := RangePage(fx.art, mib+200, 12*mib) // shares the OS page at 1 MiB
	_, _, err := fx.m.PageIn(context.Background(), fx.alice, big)
	wantErr(t, err, errInjected)
	if calls != 3 {
		t.Fatalf("got %d mlock calls, want 3", calls)
	}
	if got := lockedNow(t) - before; got != 0 {
		t.Fatalf("after a failed page-in: VmLck %+d bytes, want 0 (the shared page still locked, nothing else)", got)
	}
	ws := fx.m.WorkingSet()
	if c, _ := ws.CapacityOf(TierWarm); c.Used != ws.Bytes(TierWarm) || len(ws.Pages) != 1 || ws.Pages[0].Ref != neighbour {
		t.Fatalf("after a failed page-in: warm used %d, pages %+v; want only the neighbour", c.Used, ws.Pages)
	}

	sysMlockFn = sysMlock
	h, _ := fx.pageIn(t, big)
	fx.pageOut(t, neighbour, TierCold)
	if got, want := lockedNow(t)-start, h.Size(); got != want {
		t.Fatalf("big page in, neighbour out: VmLck %+d bytes, want %+d", got, want)
	}
}

// TestFailedMoveDownKeepsAccounts fails the mlock of a PageOut that
// places a page in Warm: the page must land in Cold, charged there, and
// leave no tier's Used off from the pages it holds (it was left claiming
// Warm, charged nowhere, and a later move took its bytes off Warm again).
func TestFailedMoveDownKeepsAccounts(t *testing.T) {
	fx := newFixture(t, 8*mib, []TierStore{NewWarmStore(4 * mib), NewBenchStore(4 * mib)}, ArtifactSpec{})
	ref := RangePage(fx.art, 0, mib)
	errInjected := errors.New("injected mlock failure")
	sysMlockFn = func(addr uintptr, n int64) error { return errInjected }
	t.Cleanup(func() { sysMlockFn = sysMlock })
	err := fx.m.PageOut(context.Background(), fx.admin, ref, TierWarm)
	wantErr(t, err, errInjected)
	sysMlockFn = sysMlock
	check := func(when string) {
		t.Helper()
		ws := fx.m.WorkingSet()
		for _, r := range []TierRole{TierWarm, TierBench, TierCold} {
			if c, _ := ws.CapacityOf(r); c.Used != ws.Bytes(r) {
				t.Errorf("%s: %s used %d, its pages hold %d", when, r, c.Used, ws.Bytes(r))
			}
		}
	}
	if got := fx.m.TierOf(ref); got != TierCold {
		t.Errorf("after the failed move: page in %s, want cold", got)
	}
	check("after the failed move")
	fx.pageIn(t, ref)
	fx.pageOut(t, ref, TierCold)
	check("after moving it again")
}

func TestBudgetTiers(t *testing.T) {
	ps := int64(pageSize)
	tests := []struct {
		name        string
		budget      int64
		allow       int64
		limited     bool
		warm, bench int64 // limits; warm 0: no Warm tier
		wantErr     error
	}{
		{"half warm", 8 * mib, 0, false, 4 * mib, 4 * mib, nil},
		{"odd budget rounds down to pages", 8*mib + 3*ps + 5, 0, false, 4*mib + ps, 4*mib + 2*ps, nil},
		{"warm capped by RLIMIT_MEMLOCK", 8 * mib, mib + 100, true, mib, 7 * mib, nil},
		{"RLIMIT_MEMLOCK above half", 8 * mib, 6 * mib, true, 4 * mib, 4 * mib, nil},
		{"nothing lockable: no warm", 8 * mib, 100, true, 0, 8 * mib, nil},
		{"half under a page: no warm", ps + 10, 0, false, 0, ps, nil},
		{"under a page", ps - 1, 0, false, 0, 0, ErrBudgetTooSmall},
		{"zero", 0, 0, false, 0, 0, ErrBudgetTooSmall},
		{"negative", -mib, 0, false, 0, 0, ErrBudgetTooSmall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stubAllowance(t, tt.allow, tt.limited)
			tiers, err := Budget(tt.budget)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Budget(%d): got %v, want %v", tt.budget, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Budget(%d): %v", tt.budget, err)
			}
			limits := map[TierRole]int64{}
			for _, s := range tiers {
				c := s.Capacity()
				if c.Role != TierCold && c.Unlimited() {
					t.Fatalf("tier %s: got no limit, want one", c.Role)
				}
				limits[c.Role] = c.Limit
			}
			if _, ok := limits[TierCold]; !ok {
				t.Fatalf("got tiers %v, want Cold among them", limits)
			}
			if limits[TierWarm] != tt.warm || limits[TierBench] != tt.bench {
				t.Fatalf("got warm %d bench %d, want warm %d bench %d", limits[TierWarm], limits[TierBench], tt.warm, tt.bench)
			}
			if sum := limits[TierWarm] + limits[TierBench]; sum > tt.budget {
				t.Fatalf("got %d bytes of limits, over the budget of %d", sum, tt.budget)
			}
		})
	}
}

// TestBudgetCapped: with a cycle Warm takes the whole budget, unless
// maxLocked caps it, when Bench takes the rest; RLIMIT_MEMLOCK still
// caps it below that. Pinned room is added to Warm beyond the budget and
// spends the allowance first, all or nothing.
func TestBudgetCapped(t *testing.T) {
	ps := int64(pageSize)
	for _, tt := range []struct {
		name                     string
		maxLocked, pinned, allow int64
		limited                  bool
		warm, bench, granted     int64
	}{
		{"no cap", -1, 0, 0, false, 8 * mib, 0, 0},
		{"capped", 5*mib + 7, 0, 0, false, 5 * mib, 3 * mib, 0},
		{"cap over the budget", 9 * mib, 0, 0, false, 8 * mib, 0, 0},
		{"nothing to lock", 0, 0, 0, false, 0, 8 * mib, 0},
		{"under a page", ps - 1, 0, 0, false, 0, 8 * mib, 0},
		{"RLIMIT_MEMLOCK lower", 5 * mib, 0, 2 * mib, true, 2 * mib, 6 * mib, 0},
		{"pinned", -1, 3*mib - 5, 0, false, 11 * mib, 0, 3 * mib},
		{"pinned, nothing else locked", 0, 3 * mib, 0, false, 3 * mib, 8 * mib, 3 * mib},
		{"pinned first under RLIMIT_MEMLOCK", -1, 3 * mib, 5 * mib, true, 5 * mib, 6 * mib, 3 * mib},
		{"pinned over RLIMIT_MEMLOCK", -1, 3 * mib, 2 * mib, true, 2 * mib, 6 * mib, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stubAllowance(t, tt.allow, tt.limited)
			tiers, granted, err := BudgetTiers(BudgetSpec{Budget: 8 * mib, Cycle: 3 * mib, MaxLocked: tt.maxLocked, Pinned: tt.pinned})
			if err != nil {
				t.Fatal(err)
			}
			limits := map[TierRole]int64{}
			for _, s := range tiers {
				limits[s.Capacity().Role] = s.Capacity().Limit
			}
			if limits[TierWarm] != tt.warm || limits[TierBench] != tt.bench || granted != tt.granted {
				t.Fatalf("got warm %d bench %d pinned %d, want warm %d bench %d pinned %d",
					limits[TierWarm], limits[TierBench], granted, tt.warm, tt.bench, tt.granted)
			}
			if tt.pinned == 0 {
				capped, err := BudgetCapped(8*mib, 3*mib, tt.maxLocked)
				if err != nil || len(capped) != len(tiers) {
					t.Fatalf("BudgetCapped: %d tiers, %v; BudgetTiers made %d", len(capped), err, len(tiers))
				}
			}
		})
	}
}

func TestNewLocalCapsWarmAtMemlock(t *testing.T) {
	tests := []struct {
		name    string
		limit   int64 // the Warm store's own limit; 0: none
		allow   int64
		limited bool
		want    int64
		wantErr error
	}{
		{"no limit: capped", 0, 2*mib + 7, true, 2 * mib, nil},
		{"over the allowance: capped", 8 * mib, 2 * mib, true, 2 * mib, nil},
		{"under the allowance: kept", mib, 2 * mib, true, mib, nil},
		{"no RLIMIT_MEMLOCK: kept", 8 * mib, 0, false, 8 * mib, nil},
		{"no RLIMIT_MEMLOCK, no limit: kept", 0, 0, false, 0, nil},
		{"nothing lockable: refused", mib, 100, true, 0, ErrMemlockLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stubAllowance(t, tt.allow, tt.limited)
			m, err := NewLocal(Config{Tiers: []TierStore{NewWarmStore(tt.limit)}})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if got := m.Store(TierWarm).Capacity().Limit; got != tt.want {
				t.Fatalf("warm limit: got %d, want %d", got, tt.want)
			}
		})
	}
	// Without a Warm tier nothing is locked, so no allowance is needed.
	stubAllowance(t, 0, true)
	m, err := NewLocal(Config{Tiers: []TierStore{NewBenchStore(mib)}})
	if err != nil {
		t.Fatalf("bench only, nothing lockable: got %v, want nil", err)
	}
	m.Close()
}

func TestMemlockAllowance(t *testing.T) {
	const capIPC = uint64(1) << capIPCLock
	tests := []struct {
		name        string
		cur, capEff uint64
		locked      int64
		want        int64
		limited     bool
	}{
		{"unlimited rlimit", rlimInfinity, 0, mib, 0, false},
		{"CAP_IPC_LOCK", 8 * mib, capIPC, 100 * mib, 0, false},
		{"other capabilities only", 8 * mib, ^capIPC, 0, 8 * mib, true},
		{"part used", 8 * mib, 0, 3 * mib, 5 * mib, true},
		{"over the limit", mib, 0, 2 * mib, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, limited := memlockAllowance(tt.cur, tt.capEff, tt.locked)
			if n != tt.want || limited != tt.limited {
				t.Fatalf("got %d, limited %v; want %d, limited %v", n, limited, tt.want, tt.limited)
			}
		})
	}
	status := []byte("Name:\tgenome.test\nCapEff:\t000001ffffffffff\nVmLck:\t     8 kB\n")
	if got, err := parseStatusHex(status, "CapEff:"); err != nil || got != 0x1ffffffffff {
		t.Fatalf("CapEff: got %#x, %v; want 0x1ffffffffff", got, err)
	}
	if _, err := parseStatusHex(status, "CapBnd:"); err == nil {
		t.Fatal("CapBnd missing: got nil error")
	}
	if _, _, err := memlockNow(); err != nil {
		t.Fatalf("memlockNow: %v", err)
	}
}
