// Package geo parses the locations nodes and clusters carry and measures
// great-circle distances between them.
//
// A location is either a point, "lat,long" in decimal degrees (a third
// field, the radius in metres that the reference system's cluster location
// carries, is accepted and ignored), or the name of a site ("munich",
// "factory-3"): a site has no coordinates, it only matches the same name.
package geo

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Location is a parsed location: a point (HasPoint) or a named site.
type Location struct {
	Site      string
	Lat, Long float64
	HasPoint  bool
}

// siteRE is what a site name may look like.
var siteRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

// Parse reads a location. The empty string is no location (zero Location,
// nil error).
func Parse(s string) (Location, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Location{}, nil
	}
	if !strings.Contains(s, ",") {
		if !siteRE.MatchString(s) {
			return Location{}, fmt.Errorf("location %q: give \"lat,long\" in degrees or a site name (a letter, then up to 63 of A-Z a-z 0-9 _ . -)", s)
		}
		return Location{Site: s}, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 3 {
		return Location{}, fmt.Errorf("location %q: give \"lat,long\" in degrees", s)
	}
	var v [3]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return Location{}, fmt.Errorf("location %q: %q is not a number", s, strings.TrimSpace(p))
		}
		v[i] = f
	}
	if len(parts) < 2 {
		return Location{}, fmt.Errorf("location %q: give \"lat,long\" in degrees", s)
	}
	if v[0] < -90 || v[0] > 90 {
		return Location{}, fmt.Errorf("location %q: latitude %g is not within -90..90", s, v[0])
	}
	if v[1] < -180 || v[1] > 180 {
		return Location{}, fmt.Errorf("location %q: longitude %g is not within -180..180", s, v[1])
	}
	return Location{Lat: v[0], Long: v[1], HasPoint: true}, nil
}

// String renders a location as Parse reads it.
func (l Location) String() string {
	if l.HasPoint {
		return strconv.FormatFloat(l.Lat, 'f', -1, 64) + "," + strconv.FormatFloat(l.Long, 'f', -1, 64)
	}
	return l.Site
}

// earthRadiusKm is the mean radius of the Earth.
const earthRadiusKm = 6371.0088

// DistanceKm is the great-circle distance between two points (haversine).
func DistanceKm(aLat, aLong, bLat, bLong float64) float64 {
	rad := math.Pi / 180
	dLat, dLong := (bLat-aLat)*rad, (bLong-aLong)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(aLat*rad)*math.Cos(bLat*rad)*math.Sin(dLong/2)*math.Sin(dLong/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(h)))
}

// Distance is the distance in km between two locations, when both are
// points; ok is false otherwise.
func Distance(a, b Location) (km float64, ok bool) {
	if !a.HasPoint || !b.HasPoint {
		return 0, false
	}
	return DistanceKm(a.Lat, a.Long, b.Lat, b.Long), true
}
