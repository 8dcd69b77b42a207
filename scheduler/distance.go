package scheduler

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/geo"
	"github.com/thicket-edge/thicket/internal/netcoord"
)

// Latency and geo constraints (as in the SLA).
//
// A latency constraint bounds the estimated round trip (network
// coordinates, internal/netcoord) from the candidate node to its target:
// the node Node (of Cluster, if given), the nodes of Cluster, or the nodes
// at site Area; to several nodes, the nearest counts, and a target node is
// 0 ms from itself. A geo constraint bounds the great-circle distance from
// the candidate's location (the caller fills in the cluster's for a node
// without one) to Location, or asks for a node at the site it names.
//
// At the root every node of every cluster can be a target. A cluster's
// scheduler knows only its own nodes: a latency target it does not find
// among them was checked by the root when it chose the cluster, and the
// cluster does not check it again (it ranks by the constraints it can
// check).
//
// Among the feasible nodes, an instance with such constraints prefers the
// nearest: by round trip to the first latency constraint's target it can
// measure, else by distance to the first geo constraint's point.
const (
	constraintLatency = "latency"
	constraintGeo     = "geo"
)

// distance is a latency or geo constraint, checked once per request.
type distance struct {
	idx int
	c   *wire.Constraint
	loc geo.Location // geo
	// Latency: the target nodes found among the landmarks.
	targets  []*wire.Coordinate
	targetID map[nodeKey]bool
	resolved bool
}

// nodeKey names a node across clusters.
type nodeKey struct{ cluster, id string }

// landmark is a node that latency constraints may name.
type landmark struct {
	id, name, cluster, location string
	coord                       *wire.Coordinate
	services                    []string
}

func (r *request) parseDistance(i int, c *wire.Constraint) error {
	d := distance{idx: i, c: c}
	switch c.Type {
	case constraintLatency:
		if !(c.Threshold > 0) || c.Node == "" && c.Cluster == "" && c.Area == "" && c.Service == "" {
			return invalid(r.spec, "constraints[%d]: a latency constraint needs a threshold and a target", i)
		}
	case constraintGeo:
		l, err := geo.Parse(c.Location)
		if err != nil || l == (geo.Location{}) || l.HasPoint && !(c.Threshold > 0) {
			return invalid(r.spec, "constraints[%d]: a geo constraint needs a location (and a threshold for a point)", i)
		}
		d.loc = l
	}
	r.dist = append(r.dist, d)
	return nil
}

// resolve finds the targets of the latency constraints among the landmarks.
func (r *request) resolve(marks []landmark) {
	for i := range r.dist {
		d := &r.dist[i]
		if d.c.Type != constraintLatency {
			continue
		}
		d.targets, d.targetID, d.resolved = nil, map[nodeKey]bool{}, false
		for j := range marks {
			m := &marks[j]
			if !d.names(m, r.spec.ApplicationName) {
				continue
			}
			d.resolved = true
			d.targetID[nodeKey{m.cluster, m.id}] = true
			if m.coord.Valid() {
				d.targets = append(d.targets, m.coord)
			}
		}
	}
}

// names reports whether a latency constraint's target includes m (app is
// the instance's application, whose services a constraint names).
func (d *distance) names(m *landmark, app string) bool {
	c := d.c
	switch {
	case c.Node != "":
		return m.name == c.Node && (c.Cluster == "" || m.cluster == c.Cluster)
	case c.Service != "":
		return slices.Contains(m.services, app+"/"+c.Service)
	case c.Cluster != "":
		return m.cluster == c.Cluster
	default:
		l, err := geo.Parse(m.location)
		return err == nil && !l.HasPoint && l.Site == c.Area
	}
}

// target describes a latency constraint's target.
func (d *distance) target() string {
	c := d.c
	switch {
	case c.Node != "" && c.Cluster != "":
		return "node " + c.Node + " of cluster " + c.Cluster
	case c.Node != "":
		return "node " + c.Node
	case c.Service != "":
		return "service " + c.Service + "'s instances"
	case c.Cluster != "":
		return "cluster " + c.Cluster
	}
	return "site " + c.Area
}

// rtt is the estimated round trip in ms from a node to the nearest target
// (0 for a target itself); ok is false when the node has no coordinate.
func (d *distance) rtt(n *wire.NodeInfo, cluster string) (ms float64, ok bool) {
	if d.targetID[nodeKey{cluster, n.ID}] {
		return 0, true
	}
	best := math.Inf(1)
	for _, t := range d.targets {
		if e, ok := netcoord.Estimate(n.Coordinate, t); ok {
			best = math.Min(best, float64(e)/float64(time.Millisecond))
		}
	}
	return best, !math.IsInf(best, 1)
}

// location is a node's parsed location (parsed once per request and
// string: most nodes share a few).
func (r *request) location(n *wire.NodeInfo) (geo.Location, bool) {
	if l, ok := r.locs[n.Location]; ok {
		return l, l != (geo.Location{})
	}
	l, err := geo.Parse(n.Location)
	if err != nil {
		l = geo.Location{}
	}
	if r.locs == nil {
		r.locs = map[string]geo.Location{}
	}
	r.locs[n.Location] = l
	return l, l != (geo.Location{})
}

// km is the distance from a node's location to a geo constraint's point;
// ok is false when the node has no point.
func (r *request) km(d *distance, n *wire.NodeInfo) (float64, bool) {
	l, ok := r.location(n)
	if !ok {
		return 0, false
	}
	return geo.Distance(l, d.loc)
}

// checkDistance applies the latency and geo constraints to a node of the
// named cluster: the first that fails, its index in r.dist, and the value
// measured (ms or km; NaN when there is none).
func (r *request) checkDistance(n *wire.NodeInfo, cluster string) (filter, int, float64) {
	for i := range r.dist {
		d := &r.dist[i]
		switch d.c.Type {
		case constraintLatency:
			if !d.resolved && r.lenient {
				continue
			}
			if len(d.targets) == 0 && !d.targetID[nodeKey{cluster, n.ID}] {
				return failLatencyTarget, i, math.NaN()
			}
			ms, ok := d.rtt(n, cluster)
			if !ok {
				return failNoCoordinate, i, math.NaN()
			}
			if ms > d.c.Threshold {
				return failLatency, i, ms
			}
		case constraintGeo:
			if !d.loc.HasPoint {
				if l, _ := r.location(n); l.HasPoint || l.Site != d.loc.Site {
					return failSite, i, math.NaN()
				}
				continue
			}
			km, ok := r.km(d, n)
			if !ok {
				return failNoLocation, i, math.NaN()
			}
			if km > d.c.Threshold {
				return failGeo, i, km
			}
		}
	}
	return fitOK, -1, 0
}

// nearness ranks a feasible node for distance constraints: the higher the
// nearer (minus ms, or minus km / 1000 so that any latency outranks).
func (r *request) nearness(n *wire.NodeInfo, cluster string) float64 {
	for i := range r.dist {
		d := &r.dist[i]
		if d.c.Type == constraintLatency && len(d.targets) > 0 {
			if ms, ok := d.rtt(n, cluster); ok {
				return -ms
			}
		}
	}
	for i := range r.dist {
		d := &r.dist[i]
		if d.c.Type == constraintGeo && d.loc.HasPoint {
			if km, ok := r.km(d, n); ok {
				return -km
			}
		}
	}
	return 0
}

// distReason is the text of a distance filter's rejection, singular.
func (r *request) distReason(f filter, i int, nearest float64) string {
	d := &r.dist[i]
	which := d.c.Type + " constraint " + strconv.Itoa(d.idx+1)
	round := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	switch f {
	case failLatencyTarget:
		return "cannot be measured against " + d.target() + " (" + which + "): no such node, or none with a network coordinate yet"
	case failNoCoordinate:
		return "has no network coordinate yet (" + which + ")"
	case failLatency:
		s := "is more than " + strconv.FormatFloat(d.c.Threshold, 'f', -1, 64) + " ms from " + d.target() + " (" + which
		if !math.IsNaN(nearest) {
			s += "; nearest " + round(nearest) + " ms"
		}
		return s + ")"
	case failSite:
		return "is not at site " + d.loc.Site + " (" + which + ")"
	case failNoLocation:
		return "has no location (" + which + ")"
	case failGeo:
		s := "is more than " + strconv.FormatFloat(d.c.Threshold, 'f', -1, 64) + " km from " + d.c.Location + " (" + which
		if !math.IsNaN(nearest) {
			s += "; nearest " + round(nearest) + " km"
		}
		return s + ")"
	}
	return "fails filter " + strconv.Itoa(int(f))
}
