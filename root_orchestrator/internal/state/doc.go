// Package state is the root's core: what the root knows of applications,
// services, instances, clusters and nodes, in memory, indexed, consistent,
// and written behind to MongoDB. Everything else of the root reads it
// through snapshots and changes it through its operations:
//
//	           REST API (internal/httpapi)                cluster syncs and watches
//	SLA ──► CreateApplications/AddInstance/…     ApplyReport ◄── nodes, statuses (deltas)
//	                       │                           │
//	                       ▼                           ▼
//	           ┌──────────────────────────────────────────────────┐
//	           │ Store: go-memdb tables, one writer at a time;     │
//	           │ every write commits at a new index               │──► Changed(): watches wake
//	           └──────────────────────────────────────────────────┘
//	               │ Snapshot()                    │ changes of each write
//	               ▼                               ▼
//	dispatch: Waiting → scheduler → Assign    persister: latest version of each
//	httpapi: REST documents (convert.go)      object, in batches ──► Backend
//	DesiredFor(cluster, epoch, after):        (MongoDB, internal/store; Memory in
//	  new specs + removed keys + network      tests). Durable(ticket) waits for it.
//
// Reads never wait: a Snapshot is an immutable view at one index. Writes are
// serialised and all-or-nothing (a failed check aborts the whole
// transaction), so the uniqueness rules (application names, service IPs,
// address blocks) hold without help from the database.
//
// Durability: each write queues the objects it changed; Run writes the
// newest version of each in batches, a bounded time behind: at once what an
// API answer waits for (a few milliseconds when the database keeps up),
// background changes (cluster reports, scheduling verdicts) after a second,
// so that an instance's first states make one write. The REST API answers a
// change only once Durable says it is stored, so a crash (even SIGKILL)
// loses no acknowledged write. Cluster reports are not waited for: usage figures and
// log tails stay in memory only, and a restarted root gets everything again
// from each cluster's next sync (its epoch changed, so the cluster resyncs).
//
// Generations: every write has an index; a cluster's desired-set watch asks
// with the index of the set it holds and the epoch (this process) that gave
// it, and gets only what changed after it: specs assigned or changed since
// (DesiredIndex), keys that left (tombstones, kept five minutes), and the
// network when it changed (netIndex). Another epoch, or a generation older
// than the kept tombstones, gets the full set.
//
// Objects handed out are shared with snapshots: they are never modified in
// place; a write copies, changes the copy and puts it back.
package state
