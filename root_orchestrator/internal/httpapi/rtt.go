package httpapi

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/geo"
	"github.com/thicket-edge/thicket/internal/netcoord"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// restCoordinate is a coordinate as the API shows it.
func restCoordinate(c *wire.Coordinate) *api.Coordinate {
	if c == nil {
		return nil
	}
	return &api.Coordinate{Vec: c.Vec, Error: c.Error, Adjustment: c.Adjustment, Height: c.Height}
}

// place is one end of an RTT estimate.
type place struct {
	name     string
	coord    *wire.Coordinate
	location string
}

// findPlace resolves "node:<name>", "node:<cluster>/<name>" or
// "cluster:<name>" (names or ids).
func findPlace(sn *state.Snapshot, field, v string) (place, error) {
	kind, name, ok := strings.Cut(v, ":")
	bad := &Error{Status: http.StatusBadRequest, Field: field,
		Message: fmt.Sprintf("%s=%q: give node:<name>, node:<cluster>/<name> or cluster:<name>", field, v)}
	if !ok || name == "" {
		return place{}, bad
	}
	switch kind {
	case "cluster":
		cl := clusterByIDOrName(sn, name)
		if cl == nil {
			return place{}, &Error{Status: http.StatusNotFound, Field: field, Message: "no cluster " + name}
		}
		return place{name: "cluster:" + cl.Name, coord: cl.Coordinate, location: cl.Location}, nil
	case "node":
		clusters := sn.Clusters()
		if cn, nn, ok := strings.Cut(name, "/"); ok {
			cl := clusterByIDOrName(sn, cn)
			if cl == nil {
				return place{}, &Error{Status: http.StatusNotFound, Field: field, Message: "no cluster " + cn}
			}
			clusters, name = []*state.Cluster{cl}, nn
		}
		var found []place
		for _, cl := range clusters {
			for _, n := range sn.Nodes(cl.ID) {
				if n.ID == name || n.Name == name {
					found = append(found, place{name: "node:" + cl.Name + "/" + n.Name, coord: n.Coordinate,
						location: cmp.Or(n.Location, cl.Location)})
				}
			}
		}
		switch len(found) {
		case 0:
			return place{}, &Error{Status: http.StatusNotFound, Field: field, Message: "no node " + name}
		case 1:
			return found[0], nil
		}
		return place{}, &Error{Status: http.StatusBadRequest, Field: field,
			Message: fmt.Sprintf("%d nodes are called %s: give node:<cluster>/%s", len(found), name, name)}
	}
	return place{}, bad
}

// rtt answers GET /api/rtt?from=…&to=…: the estimated round trip between
// two nodes or clusters by their network coordinates.
func (s *Server) rtt(c echo.Context) error {
	sn := s.state.Snapshot()
	from, err := findPlace(sn, "from", c.QueryParam("from"))
	if err != nil {
		return err
	}
	to, err := findPlace(sn, "to", c.QueryParam("to"))
	if err != nil {
		return err
	}
	est, ok := netcoord.Estimate(from.coord, to.coord)
	if !ok {
		missing := from.name
		if from.coord.Valid() {
			missing = to.name
		}
		return &Error{Status: http.StatusConflict, Message: missing + " has no network coordinate yet (its node probes its peers every few seconds once the overlay runs)"}
	}
	out := api.RTT{From: from.name, To: to.name, RTTMS: math.Round(float64(est)/float64(time.Microsecond)) / 1000,
		FromCoord: restCoordinate(from.coord), ToCoord: restCoordinate(to.coord)}
	a, errA := geo.Parse(from.location)
	b, errB := geo.Parse(to.location)
	if km, ok := geo.Distance(a, b); ok && errA == nil && errB == nil {
		km = math.Round(km*10) / 10
		out.DistanceKM = &km
	}
	return c.JSON(http.StatusOK, out)
}
