package bus

// This file holds the event-pattern token trie. Each level maps literal
// segments to nodes and has at most one "*" node (pwc) and one ">" node
// (fwc), so matching a name visits, per segment, one literal child plus the
// wildcard branches: the cost grows with the number of wildcard branches on
// the path, not with the number of subscriptions. All of it is guarded by
// MessageBus.mu.

type level struct {
	nodes map[string]*tnode
	pwc   *tnode // "*"
	fwc   *tnode // ">"
}

type tnode struct {
	next *level
	subs []*Subscription
}

func (l *level) empty() bool { return len(l.nodes) == 0 && l.pwc == nil && l.fwc == nil }

func (n *tnode) empty() bool { return len(n.subs) == 0 && (n.next == nil || n.next.empty()) }

// maxStackTokens is how many segments tokenize can hold without allocating.
const maxStackTokens = 16

// tokenize appends the ':'-separated segments of s to dst. The segments are
// substrings of s, so nothing is copied.
func tokenize(dst []string, s string) []string {
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			dst = append(dst, s[start:i])
			start = i + 1
		}
	}
	return append(dst, s[start:])
}

// insert adds sub under the already validated pattern. Caller holds b.mu.
func (l *level) insert(pattern string, sub *Subscription) {
	var buf [maxStackTokens]string
	toks := tokenize(buf[:0], pattern)
	var n *tnode
	for i, t := range toks {
		switch t {
		case "*":
			if l.pwc == nil {
				l.pwc = &tnode{}
			}
			n = l.pwc
		case ">":
			if l.fwc == nil {
				l.fwc = &tnode{}
			}
			n = l.fwc
		default:
			if l.nodes == nil {
				l.nodes = make(map[string]*tnode)
			}
			n = l.nodes[t]
			if n == nil {
				n = &tnode{}
				l.nodes[t] = n
			}
		}
		if i < len(toks)-1 {
			if n.next == nil {
				n.next = &level{}
			}
			l = n.next
		}
	}
	n.subs = append(n.subs, sub)
}

// remove deletes sub from under pattern and prunes nodes left empty. It
// reports whether sub was found. Caller holds b.mu.
func (l *level) remove(pattern string, sub *Subscription) bool {
	var buf [maxStackTokens]string
	toks := tokenize(buf[:0], pattern)
	return l.removeAt(toks, sub)
}

func (l *level) removeAt(toks []string, sub *Subscription) bool {
	var n *tnode
	switch toks[0] {
	case "*":
		n = l.pwc
	case ">":
		n = l.fwc
	default:
		n = l.nodes[toks[0]]
	}
	if n == nil {
		return false
	}
	var found bool
	if len(toks) == 1 {
		n.subs, found = removeSub(n.subs, sub)
	} else if n.next != nil {
		found = n.next.removeAt(toks[1:], sub)
		if n.next.empty() {
			n.next = nil
		}
	}
	if found && n.empty() {
		switch toks[0] {
		case "*":
			l.pwc = nil
		case ">":
			l.fwc = nil
		default:
			delete(l.nodes, toks[0])
		}
	}
	return found
}

// removeSub deletes sub from subs, keeping order, and reports whether it was
// there. It never writes into a slice a cached result may share: the cache
// is cleared on every change, and results are built in fresh slices.
func removeSub(subs []*Subscription, sub *Subscription) ([]*Subscription, bool) {
	for i, s := range subs {
		if s == sub {
			copy(subs[i:], subs[i+1:])
			subs[len(subs)-1] = nil
			return subs[:len(subs)-1], true
		}
	}
	return subs, false
}

// match appends to res every subscription whose pattern matches the
// segments toks. Caller holds b.mu (read).
func (l *level) match(toks []string, res []*Subscription) []*Subscription {
	var n, pwc *tnode
	for i, t := range toks {
		if l == nil {
			return res
		}
		// ">" matches the remaining one or more segments, toks[i:].
		if l.fwc != nil {
			res = append(res, l.fwc.subs...)
		}
		pwc = l.pwc
		if pwc != nil && pwc.next != nil && i < len(toks)-1 {
			res = pwc.next.match(toks[i+1:], res)
		}
		n = l.nodes[t]
		if n != nil {
			l = n.next
		} else {
			l = nil
		}
	}
	// The last segment: a literal node and the "*" node of the last level.
	if n != nil {
		res = append(res, n.subs...)
	}
	if pwc != nil {
		res = append(res, pwc.subs...)
	}
	return res
}
