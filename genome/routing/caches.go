package routing

// The simulated caches. Pages are dense numbers, so every structure is
// an array indexed by page: an access allocates nothing. Each cache
// holds at most limit cost units (slots, or bytes); a page costing more
// than the whole limit is never held, and every access to it misses.

// lists is a set of intrusive doubly linked lists over pages, most
// recently inserted at the front. A page is on at most one list.
type lists struct {
	prev, next []int32 // pages, then one sentinel per list
	on         []int8  // the list a page is on, -1 for none
	bytes      []int64 // cost on each list
	n          int32   // pages: the sentinel of list k is n+k
}

func newLists(pages, k int) lists {
	l := lists{prev: make([]int32, pages+k), next: make([]int32, pages+k), on: make([]int8, pages), bytes: make([]int64, k), n: int32(pages)}
	for i := range l.on {
		l.on[i] = -1
	}
	for j := range k {
		s := l.n + int32(j)
		l.prev[s], l.next[s] = s, s
	}
	return l
}

// pushFront puts page p, of cost c, at the front of list k.
func (l *lists) pushFront(k int, p int32, c int64) {
	s := l.n + int32(k)
	l.next[p], l.prev[p] = l.next[s], s
	l.prev[l.next[s]] = p
	l.next[s] = p
	l.on[p] = int8(k)
	l.bytes[k] += c
}

// remove takes page p, of cost c, off its list.
func (l *lists) remove(p int32, c int64) {
	l.next[l.prev[p]] = l.next[p]
	l.prev[l.next[p]] = l.prev[p]
	l.bytes[l.on[p]] -= c
	l.on[p] = -1
}

// back returns the page at the back (least recent) of list k, or -1.
func (l *lists) back(k int) int32 {
	s := l.n + int32(k)
	if p := l.prev[s]; p != s {
		return p
	}
	return -1
}

// lru evicts the least recently used page.
type lru struct {
	l     lists
	cost  costs
	limit int64
}

func newLRU(pages int, cost costs, limit int64) *lru {
	return &lru{l: newLists(pages, 1), cost: cost, limit: limit}
}

func (c *lru) access(p int32, _ int) (bool, error) {
	cp := c.cost.of(p)
	if c.l.on[p] == 0 {
		c.l.remove(p, cp)
		c.l.pushFront(0, p, cp)
		return true, nil
	}
	if cp > c.limit {
		return false, nil
	}
	for c.l.bytes[0]+cp > c.limit {
		v := c.l.back(0)
		c.l.remove(v, c.cost.of(v))
	}
	c.l.pushFront(0, p, cp)
	return false, nil
}

// heap is an indexed binary heap of pages; less orders them, the first
// to evict at the root.
type heap struct {
	a    []int32
	pos  []int32 // index of a page in a, -1 when absent
	less func(a, b int32) bool
}

func newHeap(pages int, less func(a, b int32) bool) heap {
	h := heap{a: make([]int32, 0, pages), pos: make([]int32, pages), less: less}
	for i := range h.pos {
		h.pos[i] = -1
	}
	return h
}

func (h *heap) has(p int32) bool { return h.pos[p] >= 0 }

func (h *heap) push(p int32) {
	h.pos[p] = int32(len(h.a))
	h.a = append(h.a, p)
	h.up(len(h.a) - 1)
}

func (h *heap) pop() int32 {
	p := h.a[0]
	last := len(h.a) - 1
	h.swap(0, last)
	h.a = h.a[:last]
	h.pos[p] = -1
	if last > 0 {
		h.down(0)
	}
	return p
}

// fix restores the order after page p's key changed.
func (h *heap) fix(p int32) {
	i := int(h.pos[p])
	if !h.down(i) {
		h.up(i)
	}
}

func (h *heap) swap(i, j int) {
	h.a[i], h.a[j] = h.a[j], h.a[i]
	h.pos[h.a[i]], h.pos[h.a[j]] = int32(i), int32(j)
}

func (h *heap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(h.a[i], h.a[parent]) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h *heap) down(i0 int) bool {
	i, n := i0, len(h.a)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(h.a[r], h.a[l]) {
			j = r
		}
		if !h.less(h.a[j], h.a[i]) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}

// lfu evicts the page with the fewest accesses since the start of the
// trace, the least recently used of those first.
type lfu struct {
	h     heap
	freq  []int64
	last  []int64
	clock int64
	used  int64
	cost  costs
	limit int64
}

func newLFU(pages int, cost costs, limit int64) *lfu {
	c := &lfu{freq: make([]int64, pages), last: make([]int64, pages), cost: cost, limit: limit}
	c.h = newHeap(pages, func(a, b int32) bool {
		if c.freq[a] != c.freq[b] {
			return c.freq[a] < c.freq[b]
		}
		return c.last[a] < c.last[b]
	})
	return c
}

func (c *lfu) access(p int32, _ int) (bool, error) {
	c.clock++
	c.freq[p]++
	c.last[p] = c.clock
	if c.h.has(p) {
		c.h.fix(p)
		return true, nil
	}
	cp := c.cost.of(p)
	if cp > c.limit {
		return false, nil
	}
	for c.used+cp > c.limit {
		c.used -= c.cost.of(c.h.pop())
	}
	c.h.push(p)
	c.used += cp
	return false, nil
}

// belady is Belady's MIN: it evicts the resident page whose next access is
// farthest away (never accessed again first).
type belady struct {
	h     heap
	nu    []int32 // a resident page's next access
	next  []int32
	used  int64
	cost  costs
	limit int64
}

func newMIN(pages int, cost costs, limit int64, next []int32) *belady {
	c := &belady{nu: make([]int32, pages), next: next, cost: cost, limit: limit}
	c.h = newHeap(pages, func(a, b int32) bool { return c.nu[a] > c.nu[b] })
	return c
}

func (c *belady) access(p int32, i int) (bool, error) {
	c.nu[p] = c.next[i]
	if c.h.has(p) {
		c.h.fix(p)
		return true, nil
	}
	cp := c.cost.of(p)
	if cp > c.limit {
		return false, nil
	}
	for c.used+cp > c.limit {
		c.used -= c.cost.of(c.h.pop())
	}
	c.h.push(p)
	c.used += cp
	return false, nil
}

// arc is the adaptive replacement cache of Megiddo and Modha (FAST '03):
// T1 holds pages seen once recently, T2 pages seen at least twice, B1 and
// B2 the ghosts (pages only, no data) evicted from each; p, the target
// size of T1, grows on a hit in B1 and shrinks on a hit in B2. Sizes are
// cost units, so with unit costs this is the paper's algorithm, and with
// bytes it is the generalization ZFS uses: a ghost hit moves p by the
// page's cost times the ratio of the ghost lists, and lists are trimmed
// until the page fits.
type arc struct {
	l     lists
	p     float64
	cost  costs
	limit int64
}

const (
	t1 = iota
	t2
	b1
	b2
)

func newARC(pages int, cost costs, limit int64) *arc {
	return &arc{l: newLists(pages, 4), cost: cost, limit: limit}
}

func (c *arc) access(x int32, _ int) (bool, error) {
	s := c.cost.of(x)
	l := &c.l
	switch l.on[x] {
	case t1, t2: // case I
		l.remove(x, s)
		l.pushFront(t2, x, s)
		return true, nil
	case b1: // case II
		d := 1.0
		if l.bytes[b2] > l.bytes[b1] {
			d = float64(l.bytes[b2]) / float64(l.bytes[b1])
		}
		c.p = min(float64(c.limit), c.p+d*float64(s))
		l.remove(x, s)
		c.replace(s, false)
		l.pushFront(t2, x, s)
	case b2: // case III
		d := 1.0
		if l.bytes[b1] > l.bytes[b2] {
			d = float64(l.bytes[b1]) / float64(l.bytes[b2])
		}
		c.p = max(0, c.p-d*float64(s))
		l.remove(x, s)
		c.replace(s, true)
		l.pushFront(t2, x, s)
	default: // case IV
		if s > c.limit {
			return false, nil
		}
		if l.bytes[t1]+l.bytes[b1]+s > c.limit { // L1 is full
			for l.bytes[t1]+l.bytes[b1]+s > c.limit && l.bytes[b1] > 0 {
				c.drop(b1)
			}
			for l.bytes[t1]+s > c.limit { // B1 was empty: T1 alone fills L1
				c.drop(t1)
			}
		} else {
			for l.bytes[t1]+l.bytes[t2]+l.bytes[b1]+l.bytes[b2]+s > 2*c.limit && l.bytes[b2] > 0 {
				c.drop(b2)
			}
		}
		c.replace(s, false)
		l.pushFront(t1, x, s)
	}
	// Only with mixed sizes can the ghosts outgrow their bounds here.
	for l.bytes[t1]+l.bytes[b1] > c.limit && l.bytes[b1] > 0 {
		c.drop(b1)
	}
	for l.bytes[t1]+l.bytes[t2]+l.bytes[b1]+l.bytes[b2] > 2*c.limit && l.bytes[b2] > 0 {
		c.drop(b2)
	}
	return false, nil
}

// replace is the paper's REPLACE, repeated until a page of cost s fits:
// it moves T1's LRU page to B1 when T1 is over its target p (or at it,
// for a page found in B2), else T2's LRU page to B2.
func (c *arc) replace(s int64, inB2 bool) {
	l := &c.l
	for l.bytes[t1]+l.bytes[t2]+s > c.limit {
		t1b := float64(l.bytes[t1])
		if l.bytes[t1] > 0 && (t1b > c.p || (inB2 && t1b >= c.p) || l.bytes[t2] == 0) {
			c.move(t1, b1)
		} else {
			c.move(t2, b2)
		}
	}
}

// move moves the LRU page of list from to the MRU end of list to.
func (c *arc) move(from, to int) {
	v := c.l.back(from)
	cv := c.cost.of(v)
	c.l.remove(v, cv)
	c.l.pushFront(to, v, cv)
}

// drop forgets the LRU page of list k.
func (c *arc) drop(k int) {
	v := c.l.back(k)
	c.l.remove(v, c.cost.of(v))
}
