package state

// WriteAfter queues the write of an object the model does not hold (kind
// and id name it for the Backend, obj is what it writes) behind every
// waited-for write queued before it: it is written in the same batch as
// they are (after them: the Backend writes its kind last) or in a later
// one, never before them. Once its ticket is Durable, so are theirs.
//
// An idempotent request's answer is kept this way: one wait for the store
// instead of two (the state change, then the answer), and a kept answer
// never tells of a change that is not stored.
func (s *Store) WriteAfter(kind Kind, id string, obj any) Ticket {
	return s.p.queue([]Change{{Kind: kind, ID: id, Object: obj, after: true}})
}

// holdBack moves the changes queued with WriteAfter out of a batch (keys)
// while a waited-for change queued before them stays behind (rest), and
// returns both lists. Such a change stays behind only when the batch is
// full (maxBatch) or after a failed write, and the batch is never left
// empty: a batch of nothing but held-back changes, which cannot happen
// short of maxBatch of them queued at once, is written as it is. Caller
// holds mu.
func (p *persister) holdBack(keys, rest []changeKey) ([]changeKey, []changeKey) {
	floor := ^uint64(0) // the oldest waited-for write left behind
	for _, k := range rest {
		if q := p.pending[k]; !q.lazy && !q.after {
			floor = min(floor, q.seq)
		}
	}
	if floor == ^uint64(0) {
		return keys, rest
	}
	out := keys[:0:0]
	for _, k := range keys {
		if q := p.pending[k]; q.after && q.seq > floor {
			rest = append(rest, k)
		} else {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return keys, rest[:len(rest)-len(keys)]
	}
	return out, rest
}
