package state

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/geo"
)

// SecretHash is how credentials are kept: their SHA-256, in hex.
func SecretHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// RandomSecret returns 24 random bytes, base64url-encoded.
func RandomSecret() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Clusters returns every registered cluster by name.
func (sn *Snapshot) Clusters() []*Cluster {
	out := all[Cluster](sn.r(), tClusters, "id")
	slices.SortFunc(out, func(a, b *Cluster) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Cluster returns one cluster, or nil.
func (sn *Snapshot) Cluster(id string) *Cluster { return first[Cluster](sn.r(), tClusters, "id", id) }

// Nodes returns a cluster's nodes by name.
func (sn *Snapshot) Nodes(clusterID string) []*Node { return nodesOf(sn.r(), clusterID) }

func nodesOf(r reader, clusterID string) []*Node {
	out := all[Node](r, tNodes, "cluster", clusterID)
	slices.SortFunc(out, func(a, b *Node) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out
}

// Registration is what a cluster says of itself when it registers.
type Registration struct {
	Name     string
	Location string
	Address  string
	Port     int
	// Credential is the one the cluster holds from an earlier
	// registration, if any: it lets it register again under its name.
	Credential string
	// Reset: the join token was scoped to this name, so an admin allowed
	// whoever holds it to take the name over.
	Reset bool
	// CertBound: the cluster gets a client certificate with this
	// registration, and must present it from now on. IssuesCerts: the
	// root issues them (then a cluster bound to one cannot register again
	// without, but for an admin's reset).
	CertBound, IssuesCerts bool
}

// ErrCertIdentity: a cluster with a client certificate identity registered
// again without a certificate request.
var ErrCertIdentity = errors.New("the cluster has a client certificate identity: it registers again with a certificate request (csr_pem), " +
	"or with a join token an admin scoped to its name")

// RegisterCluster admits a cluster (the caller checked its join token) and
// returns its id, a new credential and its address block. A name already
// registered is taken only by the cluster that holds it (it shows its
// credential) or with a join token scoped to that name (an admin's reset:
// how a cluster that lost its data dir rejoins); otherwise it is refused
// with a ConflictError. A cluster registering again keeps its id and gets a
// new credential (the old one stops working).
func (s *Store) RegisterCluster(r Registration) (id, credential, block string, tk Ticket, err error) {
	secret, err := RandomSecret()
	if err != nil {
		return "", "", "", Ticket{}, err
	}
	tk, err = s.Write(func(t *Txn) error {
		c := &Cluster{ID: NewID(), Name: r.Name, RegisteredAt: t.now}
		if old := first[Cluster](t.r(), tClusters, "name", r.Name); old != nil {
			if !r.Reset && !credentialOf(old, r.Credential) {
				return &ConflictError{Field: "cluster_name", Message: fmt.Sprintf("cluster name %q is taken by a registered cluster; "+
					"only that cluster can register under it again (with the credential in its data dir). "+
					"To replace it, an admin deletes it (thicket cluster delete %s) or creates a join token scoped to that name", r.Name, r.Name)}
			}
			if old.CertBound && !r.CertBound && r.IssuesCerts && !r.Reset {
				return ErrCertIdentity
			}
			cp := *old
			c = &cp
			c.RegisteredAt = t.now
		}
		c.Address, c.Port, c.Location = r.Address, r.Port, r.Location
		c.CredentialHash = SecretHash(secret)
		c.CertBound = r.CertBound
		t.put(tClusters, KindCluster, c.ID, c, true)
		b, err := t.clusterBlock(c.ID)
		if err != nil {
			return err
		}
		id, block = c.ID, b
		return nil
	})
	if err != nil {
		return "", "", "", Ticket{}, fmt.Errorf("register cluster %s: %w", r.Name, err)
	}
	return id, id + "." + secret, block, tk, nil
}

// AuthenticateCluster returns the cluster a credential belongs to.
func (sn *Snapshot) AuthenticateCluster(credential string) (*Cluster, error) {
	id, _, _ := strings.Cut(credential, ".")
	c := sn.Cluster(id)
	if c == nil || !credentialOf(c, credential) {
		return nil, ErrBadCredential
	}
	return c, nil
}

// credentialOf reports whether credential ("<id>.<secret>") is c's.
func credentialOf(c *Cluster, credential string) bool {
	id, secret, ok := strings.Cut(credential, ".")
	if !ok || id != c.ID || secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.CredentialHash), []byte(SecretHash(secret))) == 1
}

// DeleteCluster forgets a cluster (an admin's delete): its credential stops
// working at once, its nodes and address blocks are freed, and the
// instances assigned to it wait for the root scheduler to place them
// elsewhere. It returns how many instances were unassigned.
func (s *Store) DeleteCluster(id string) (int, Ticket, error) {
	n := 0
	tk, err := s.Write(func(t *Txn) error {
		c := first[Cluster](t.r(), tClusters, "id", id)
		if c == nil {
			return fmt.Errorf("cluster %s: %w", id, ErrNotFound)
		}
		for _, o := range all[Instance](t.r(), tInstances, "cluster", id) {
			in := *o
			in.ClusterID, in.ClusterLocation, in.PlannedNode, in.NodeID, in.NodeName, in.Judged = "", "", "", "", "", false
			in.HostIP, in.HostPort, in.InstanceIP, in.LostFrom = "", 0, "", ""
			if !t.finished(o) {
				in.Status, in.Detail = wire.StatusLost, "cluster "+c.Name+" was deleted; being placed elsewhere"
			}
			in.UpdatedAt = t.now
			t.put(tInstances, KindInstance, in.Key, &in, true)
			n++
		}
		for _, o := range all[Instance](t.r(), tInstances, "lostfrom", id) {
			in := *o
			in.LostFrom = ""
			t.put(tInstances, KindInstance, in.Key, &in, true)
		}
		for _, nd := range nodesOf(t.r(), id) {
			t.del(tNodes, KindNode, nodeID(id, nd.ID), nd)
		}
		for _, b := range all[Block](t.r(), tBlocks, "cluster", id) {
			t.del(tBlocks, KindBlock, b.Prefix, b)
		}
		for _, ts := range all[tombstone](t.r(), tTombs, "cluster", id) {
			t.del(tTombs, "", ts.ID, ts)
		}
		t.del(tClusters, KindCluster, id, c)
		delete(t.s.exhausted, id)
		t.net = true
		return nil
	})
	return n, tk, err
}

// Report is what a cluster's sync brings: its nodes and instance statuses,
// all of them (Full) or those that changed since its last acknowledged
// sync.
type Report struct {
	Full      bool
	Nodes     []wire.NodeInfo
	GoneNodes []string
	Statuses  []wire.InstanceStatus
	// WantBlocks: the cluster needs that many more address blocks.
	WantBlocks int
	// NodeTokenUses and CAPin: see wire.ClusterSync.
	NodeTokenUses []wire.NodeTokenUse
	CAPin         string
	// Coordinate (nil: no news) and Location ("": no news) of the cluster.
	Coordinate *wire.Coordinate
	Location   string
}

// ReportResult says what a report changed.
type ReportResult struct {
	// Released counts instances the cluster handed back (NO_CAPACITY): the
	// root scheduler should run.
	Released int
	// WasInactive: the cluster had been declared lost.
	WasInactive bool
}

// ApplyReport records a cluster's sync: it is active and seen now; its
// nodes and the statuses of the instances assigned to it are updated.
// Statuses of instances not (or no longer) assigned to it are ignored.
func (s *Store) ApplyReport(clusterID string, r Report) (ReportResult, Ticket, error) {
	var res ReportResult
	tk, err := s.Write(func(t *Txn) error {
		t.lazy = true // nobody waits for it
		old := first[Cluster](t.r(), tClusters, "id", clusterID)
		if old == nil {
			return fmt.Errorf("cluster %s: %w", clusterID, ErrNotFound)
		}
		c := *old
		res.WasInactive = !c.Active
		c.LastSeen = t.now
		if !c.Active {
			c.Active = true
			t.net = true
		}
		tokens := t.takeTokenReport(&c, r)
		if r.Coordinate.Valid() {
			c.Coordinate = r.Coordinate
		}
		moved := false
		if _, err := geo.Parse(r.Location); err == nil && r.Location != "" && r.Location != c.Location && len(r.Location) <= 100 {
			c.Location, moved = r.Location, true
		}
		// The cluster document is persisted when it changes state, not for
		// every last-seen time.
		t.put(tClusters, KindCluster, c.ID, &c, res.WasInactive || tokens || moved)
		t.applyNodes(&c, r)
		if r.WantBlocks > 0 {
			t.growBlocks(&c, r.WantBlocks)
		}
		for _, st := range r.Statuses {
			if t.applyStatus(&c, st) {
				res.Released++
			}
		}
		if r.Full {
			reported := make(map[string]bool, len(r.Statuses))
			for _, st := range r.Statuses {
				reported[st.Key] = true
			}
			t.settleLost(&c, reported)
		}
		return nil
	})
	return res, tk, err
}

// durableNode is what is stored of a node.
func durableNode(n wire.NodeInfo) wire.NodeInfo {
	n.Active, n.Reserved, n.UsedPorts, n.NotReady = false, wire.Resources{}, nil, ""
	return n
}

func (t *Txn) applyNodes(c *Cluster, r Report) {
	var gone []*Node
	if r.Full {
		seen := make(map[string]bool, len(r.Nodes))
		for _, n := range r.Nodes {
			seen[n.ID] = true
		}
		for _, n := range nodesOf(t.r(), c.ID) {
			if !seen[n.ID] {
				gone = append(gone, n)
			}
		}
	}
	for _, id := range r.GoneNodes {
		if n := first[Node](t.r(), tNodes, "id", c.ID, id); n != nil {
			gone = append(gone, n)
		}
	}
	for _, n := range gone {
		t.del(tNodes, KindNode, nodeID(c.ID, n.ID), n)
		t.net = true
	}
	blocks := clusterBlocks(t.r(), c.ID)
	taken := map[string]netip.Prefix{} // the subnets of its nodes, by id
	for _, n := range nodesOf(t.r(), c.ID) {
		if n.Network != nil {
			if p, err := netip.ParsePrefix(n.Network.Subnet); err == nil {
				taken[n.ID] = p
			}
		}
	}
	for _, info := range r.Nodes {
		if c.deleted(info.ID) {
			continue // the cluster has not learnt of the deletion yet
		}
		old := first[Node](t.r(), tNodes, "id", c.ID, info.ID)
		t.validateNode(c, blocks, taken, old, &info)
		structural := old == nil || !old.SameBut(info)
		if !structural && old.CPUPercent == info.CPUPercent && old.MemoryPercent == info.MemoryPercent && old.LastSeen.Equal(info.LastSeen) {
			continue
		}
		if structural && (old == nil || old.Active != info.Active || !wire.SameNetwork(old.Network, info.Network)) {
			t.net = true
		}
		// What a node is (identity, capacity, network) is stored; how it is
		// now (liveness, reservations, usage) is kept in memory: the
		// cluster's next full sync after a restart brings it again.
		t.put(tNodes, KindNode, nodeID(c.ID, info.ID), &Node{ClusterID: c.ID, NodeInfo: info},
			old == nil || !durableNode(old.NodeInfo).SameBut(durableNode(info)))
	}
}

// persisted reports whether two versions of an instance differ in what is
// stored (not usage, logs or indexes).
func persisted(a, b *Instance) bool {
	x, y := *a, *b
	x.CPUPercent, x.MemoryMB, x.Logs, x.DesiredIndex, x.UpdatedAt, x.Judged, x.RestartAt = 0, 0, "", 0, time.Time{}, false, time.Time{}
	y.CPUPercent, y.MemoryMB, y.Logs, y.DesiredIndex, y.UpdatedAt, y.Judged, y.RestartAt = 0, 0, "", 0, time.Time{}, false, time.Time{}
	x.JobsVersion, x.JobsHeld, y.JobsVersion, y.JobsHeld = 0, "", 0, ""
	return x != y
}

// applyStatus records one status; it reports whether the cluster handed the
// instance back.
func (t *Txn) applyStatus(c *Cluster, st wire.InstanceStatus) bool {
	old := first[Instance](t.r(), tInstances, "id", st.Key)
	if old != nil && old.ClusterID != c.ID && old.LostFrom == c.ID {
		old = t.reconcile(c, old, st)
	}
	if old == nil || old.ClusterID != c.ID {
		mIgnored.Inc()
		return false
	}
	t.validateStatus(c, &st, old.InstanceIP)
	in := *old
	if st.Status == wire.StatusNoCapacity {
		t.leave(old)
		in.ClusterID, in.ClusterLocation, in.PlannedNode, in.Judged = "", "", "", false
		in.Status, in.Detail = wire.StatusNoCapacity, "cluster "+c.Name+": "+st.Detail
		in.UpdatedAt = t.now
		t.put(tInstances, KindInstance, in.Key, &in, true)
		if backend(old) != [2]string{} {
			t.net = true
		}
		return true
	}
	in.Status, in.Detail = st.Status, st.Detail
	in.NodeID, in.NodeName = st.NodeID, st.Node
	if st.NodeID != "" {
		in.PlannedNode = ""
	}
	in.HostIP, in.HostPort, in.InstanceIP = st.HostIP, st.HostPort, st.InstanceIP
	in.Restarts, in.RestartAt = st.Restarts, st.RestartAt
	in.CPUPercent, in.MemoryMB = st.CPUPercent, st.MemoryMB
	in.JobsVersion, in.JobsHeld = st.JobsVersion, strings.Join(st.Jobs, ",")
	in.Implementation, in.Choice = st.Implementation, strings.Join(st.Choice, "\n")
	if st.Logs != "" {
		in.Logs = st.Logs
	}
	in.ClusterLocation = c.Location
	if in == *old {
		return false
	}
	hard := persisted(old, &in)
	if hard {
		in.UpdatedAt = t.now
	}
	if backend(old) != backend(&in) {
		t.net = true
	}
	switch {
	case old.InstanceIP != in.InstanceIP || old.NodeID != in.NodeID && !firstPlacement(old, &in):
		t.putNow(tInstances, KindInstance, in.Key, &in) // where it runs
	default:
		t.put(tInstances, KindInstance, in.Key, &in, hard)
	}
	return false
}

// firstPlacement tells whether a report is the first to name the node of
// an instance that never ran anywhere nor had an address, and says it is
// on its way or running there (not that it ended: a one-shot's end is
// written at once). Where it runs is then written like its other
// statuses, in the background, as its assignment to the cluster is: a
// restarted root that lost it shows the node the cluster planned until the
// cluster reports again, and no traffic depends on it. A burst of
// placements would otherwise cost one write of its own per instance, among
// the requests' writes. A move (a node before, a lost cluster's copy, or
// an address) is written at once.
func firstPlacement(old, in *Instance) bool {
	return old.NodeID == "" && old.InstanceIP == "" && old.Restarts == 0 && old.LostFrom == "" &&
		(old.Status == wire.StatusRequested || old.Status == wire.StatusScheduled) &&
		(in.Status == wire.StatusScheduled || in.Status == wire.StatusCreating || in.Status == wire.StatusRunning)
}

// reconcile decides, when a cluster that was declared lost reports an
// instance that was taken from it meanwhile, which copy survives: the
// cluster's, if it runs and nothing else does yet, or if the service keeps
// the original and the copy started before the loss; otherwise the
// replacement, and the cluster is told to stop its copy. It returns the
// instance as it is now.
func (t *Txn) reconcile(c *Cluster, old *Instance, st wire.InstanceStatus) *Instance {
	in := *old
	in.LostFrom = ""
	keep := st.Status == wire.StatusRunning
	if keep && old.ClusterID != "" {
		svc := first[Service](t.r(), tServices, "id", old.ServiceID)
		original := svc == nil || svc.Spec.Disconnect.Reconcile != wire.KeepReplacement
		// A copy started after the cluster was declared lost is no
		// original (its node lost it and started it again).
		if !st.StartedAt.IsZero() && !old.LostAt.IsZero() && st.StartedAt.After(old.LostAt) {
			original = false
		}
		replaced := old.Status == wire.StatusRunning || old.Status == wire.StatusCompleted
		keep = original || !replaced
	}
	if !keep {
		t.leaveCluster(c.ID, in.Key) // its copy goes
		t.put(tInstances, KindInstance, in.Key, &in, true)
		return &in
	}
	if old.ClusterID != "" {
		t.leaveCluster(old.ClusterID, old.Key) // the replacement goes
		if backend(old) != [2]string{} {
			t.net = true
		}
	}
	in.ClusterID, in.ClusterLocation, in.PlannedNode, in.Judged = c.ID, c.Location, "", false
	in.DesiredIndex = t.index
	in.Status, in.Detail, in.UpdatedAt = wire.StatusScheduled, "kept where it ran while cluster "+c.Name+" was silent", t.now
	t.put(tInstances, KindInstance, in.Key, &in, true)
	return &in
}

// settleLost decides for the instances taken from a cluster while it was
// lost that its full report does not mention: it has no copy, so the
// replacement (or the wait for one) stands and the cluster's desired set
// drops them.
func (t *Txn) settleLost(c *Cluster, reported map[string]bool) {
	for _, o := range all[Instance](t.r(), tInstances, "lostfrom", c.ID) {
		if reported[o.Key] {
			continue
		}
		in := *o
		in.LostFrom = ""
		t.leaveCluster(c.ID, in.Key)
		t.put(tInstances, KindInstance, in.Key, &in, true)
	}
}

// backend is what the service table holds of an instance: its address and
// node while it runs, nothing otherwise.
func backend(in *Instance) [2]string {
	if in.Status != wire.StatusRunning || in.InstanceIP == "" {
		return [2]string{}
	}
	return [2]string{in.InstanceIP, in.NodeID}
}

// LoseCluster marks a cluster inactive and its instances UNKNOWN (they
// may still run there), unless it synced after lastSeen (the judgement was
// on stale evidence). It reports whether it did and how many instances
// became UNKNOWN. ReplaceUnknown seeks replacements as their services'
// disconnect policies say.
func (s *Store) LoseCluster(id string, lastSeen time.Time, reason string) (bool, int, error) {
	lost, n := false, 0
	_, err := s.Write(func(t *Txn) error {
		t.lazy = true // nobody waits for it
		old := first[Cluster](t.r(), tClusters, "id", id)
		if old == nil || !old.Active || !old.LastSeen.Equal(lastSeen) {
			return nil
		}
		c := *old
		c.Active = false
		t.put(tClusters, KindCluster, c.ID, &c, true)
		t.net = true
		lost = true
		for _, o := range all[Instance](t.r(), tInstances, "cluster", id) {
			if t.finished(o) {
				continue
			}
			in := *o
			in.Status, in.Detail, in.UpdatedAt, in.LostAt = wire.StatusUnknown, reason, t.now, t.now
			t.put(tInstances, KindInstance, in.Key, &in, true)
			n++
		}
		return nil
	})
	return lost, n, err
}

// finished reports whether an instance ended for good (a one-shot
// instance's end): nothing of it runs, nothing is to be replaced.
func (t *Txn) finished(in *Instance) bool {
	switch in.Status {
	case wire.StatusCompleted:
		return true
	case wire.StatusFailed:
		svc := first[Service](t.r(), tServices, "id", in.ServiceID)
		return svc != nil && svc.Spec.OneShot
	}
	return false
}

// ReplaceUnknown hands the UNKNOWN instances of lost clusters whose
// services replace them (after their ReplaceAfter, counted from when they
// became UNKNOWN) back to the root scheduler, and returns how many. The
// lost cluster keeps them in its desired set until it reports again (see
// reconcile): its copies may still run.
func (s *Store) ReplaceUnknown(now time.Time) (int, error) {
	sn := s.Snapshot()
	var due []string
	for _, c := range sn.Clusters() {
		if c.Active {
			continue
		}
		for _, in := range all[Instance](sn.r(), tInstances, "cluster", c.ID) {
			if in.Status != wire.StatusUnknown {
				continue
			}
			svc := sn.Service(in.ServiceID)
			if svc == nil || !svc.Spec.Disconnect.Replace || now.Sub(in.UpdatedAt) < svc.Spec.Disconnect.ReplaceAfter {
				continue
			}
			if svc.HasJobs() {
				// Its cluster shares the jobs and keeps doing so while
				// cut off from the root: a copy elsewhere would get them
				// too. The pool waits for its cluster.
				continue
			}
			due = append(due, in.Key)
		}
	}
	if len(due) == 0 {
		return 0, nil
	}
	n := 0
	_, err := s.Write(func(t *Txn) error {
		t.lazy = true
		for _, k := range due {
			o := first[Instance](t.r(), tInstances, "id", k)
			if o == nil || o.Status != wire.StatusUnknown || o.ClusterID == "" {
				continue
			}
			c := first[Cluster](t.r(), tClusters, "id", o.ClusterID)
			if c == nil || c.Active {
				continue // it came back meanwhile
			}
			in := *o
			in.LostFrom = o.ClusterID
			in.ClusterID, in.ClusterLocation, in.PlannedNode, in.NodeID, in.NodeName, in.Judged = "", "", "", "", "", false
			in.HostIP, in.HostPort, in.InstanceIP = "", 0, ""
			in.Status, in.Detail, in.UpdatedAt = wire.StatusLost, "being replaced: "+o.Detail, t.now
			t.put(tInstances, KindInstance, in.Key, &in, true)
			n++
		}
		return nil
	})
	return n, err
}
