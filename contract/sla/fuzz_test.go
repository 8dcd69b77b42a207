package sla

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/sla/slatest"
)

// examplesDir holds the SLA example files of the repository.
const examplesDir = "../../sla_examples"

func exampleFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestExamples(t *testing.T) {
	files := exampleFiles(t)
	if len(files) < 4 {
		t.Fatalf("found only %d example files in %s", len(files), examplesDir)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(file, ".services.json") {
				var doc struct {
					Microservices []Microservice `json:"microservices"`
				}
				if err := decodeInto(data, &doc); err != nil {
					t.Fatalf("decode: %v", err)
				}
				if len(doc.Microservices) == 0 {
					t.Fatal("no microservices")
				}
				for i := range doc.Microservices {
					if errs := ValidateMicroservice("microservices["+strconv.Itoa(i)+"]", &doc.Microservices[i]); errs != nil {
						t.Error(errs)
					}
				}
				return
			}
			s, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, file := range exampleFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(slatest.Valid()))
	for _, c := range slatest.Invalid() {
		f.Add([]byte(c.Body))
	}
	f.Add([]byte(``))
	f.Add([]byte(`{"applications":[null,{"microservices":[{"vcpus":1e2}]}]} `))

	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			if s != nil {
				t.Fatal("Decode returned an SLA with an error")
			}
			if _, ok := err.(Errors); !ok {
				t.Fatalf("Decode error %T is not Errors", err)
			}
			return
		}
		// Both validators must not panic, whatever the content.
		_ = s.ValidateServices()
		if err := s.Validate(); err != nil {
			if errs, ok := err.(Errors); !ok || len(errs) == 0 {
				t.Fatalf("Validate error %#v is not a non-empty Errors", err)
			}
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		s2, err := Decode(out)
		if err != nil {
			t.Fatalf("Decode(Marshal(s)) failed: %v\n%s", err, out)
		}
		if err := s2.Validate(); err != nil {
			t.Fatalf("Validate after round trip failed: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip changed the SLA:\n before %+v\n after  %+v", s, s2)
		}
	})
}
