package geo

import (
	"math"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Location
		wantErr bool
	}{
		{"", Location{}, false},
		{"48.14,11.58", Location{Lat: 48.14, Long: 11.58, HasPoint: true}, false},
		{" -33.9 , 151.2 ", Location{Lat: -33.9, Long: 151.2, HasPoint: true}, false},
		{"48.26,11.67,1000", Location{Lat: 48.26, Long: 11.67, HasPoint: true}, false},
		{"munich", Location{Site: "munich"}, false},
		{"factory-3.hall_a", Location{Site: "factory-3.hall_a"}, false},
		{"91,0", Location{}, true},
		{"0,181", Location{}, true},
		{"a,b", Location{}, true},
		{"1,2,3,4", Location{}, true},
		{"NaN,1", Location{}, true},
		{"3rd floor", Location{}, true},
		{"48.1,", Location{}, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Parse(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	munich, _ := Parse("48.1374,11.5755")
	berlin, _ := Parse("52.5200,13.4050")
	site, _ := Parse("munich")
	tests := []struct {
		name   string
		a, b   Location
		wantKm float64
		ok     bool
	}{
		{"munich-berlin", munich, berlin, 504, true},
		{"same point", munich, munich, 0, true},
		{"antipodes", Location{Lat: 0, Long: 0, HasPoint: true}, Location{Lat: 0, Long: 180, HasPoint: true}, math.Pi * earthRadiusKm, true},
		{"site has no point", munich, site, 0, false},
	}
	for _, tt := range tests {
		km, ok := Distance(tt.a, tt.b)
		if ok != tt.ok || math.Abs(km-tt.wantKm) > 2 {
			t.Errorf("%s: Distance = %.1f km, %v; want about %.0f km, %v", tt.name, km, ok, tt.wantKm, tt.ok)
		}
	}
}
