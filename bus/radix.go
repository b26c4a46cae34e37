package bus

// This file holds the radix tree of Prefix selectors. Matching walks the key
// once, byte by byte along compressed edges, collecting the subscriptions of
// every node it passes: each node's path is a prefix of the key. The cost is
// bounded by the key's length, not by the number of selectors. All of it is
// guarded by MessageBus.mu.

type rnode struct {
	label    string // edge label from the parent; "" at the root
	children map[byte]*rnode
	subs     []*Subscription
}

// insert adds sub under prefix. Caller holds b.mu.
func (n *rnode) insert(prefix string, sub *Subscription) {
	for {
		if prefix == "" {
			n.subs = append(n.subs, sub)
			return
		}
		c := n.children[prefix[0]]
		if c == nil {
			if n.children == nil {
				n.children = make(map[byte]*rnode)
			}
			n.children[prefix[0]] = &rnode{label: prefix, subs: []*Subscription{sub}}
			return
		}
		common := commonPrefixLen(prefix, c.label)
		if common < len(c.label) {
			// Split c's edge at common.
			mid := &rnode{label: c.label[:common], children: map[byte]*rnode{}}
			c.label = c.label[common:]
			mid.children[c.label[0]] = c
			n.children[prefix[0]] = mid
			c = mid
		}
		prefix = prefix[common:]
		n = c
	}
}

// remove deletes sub from under prefix, pruning and merging nodes so the
// tree stays compressed. It reports whether sub was found. Caller holds
// b.mu.
func (n *rnode) remove(prefix string, sub *Subscription) bool {
	if prefix == "" {
		var found bool
		n.subs, found = removeSub(n.subs, sub)
		return found
	}
	c := n.children[prefix[0]]
	if c == nil || len(prefix) < len(c.label) || prefix[:len(c.label)] != c.label {
		return false
	}
	if !c.remove(prefix[len(c.label):], sub) {
		return false
	}
	switch {
	case len(c.subs) == 0 && len(c.children) == 0:
		delete(n.children, prefix[0])
	case len(c.subs) == 0 && len(c.children) == 1:
		for _, g := range c.children {
			g.label = c.label + g.label
			n.children[prefix[0]] = g
		}
	}
	return true
}

// match appends to res the subscriptions of every prefix of key. Caller
// holds b.mu (read).
func (n *rnode) match(key string, res []*Subscription) []*Subscription {
	for {
		res = append(res, n.subs...)
		if key == "" {
			return res
		}
		c := n.children[key[0]]
		if c == nil || len(key) < len(c.label) || key[:len(c.label)] != c.label {
			return res
		}
		key = key[len(c.label):]
		n = c
	}
}

func commonPrefixLen(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
