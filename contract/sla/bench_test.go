package sla

import (
	"os"
	"testing"
)

// BenchmarkDecodeValidate measures parsing and validating the seed's
// two-service SLA, the work done for every POST /api/application.
func BenchmarkDecodeValidate(b *testing.B) {
	data, err := os.ReadFile("../../sla_examples/clientsrvr.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s, err := Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
