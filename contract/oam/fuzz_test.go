package oam

import (
	"errors"
	"testing"

	"github.com/thicket-edge/thicket/contract/sla"
)

// FuzzParse feeds arbitrary documents to Parse and Compile: they must not
// panic, must fail with sla.Errors only, and whatever compiles must be an
// SLA the SLA validator accepts.
func FuzzParse(f *testing.F) {
	f.Add([]byte(quickStart))
	f.Add([]byte(multi))
	f.Add([]byte(`{"apiVersion":"core.oam.dev/v1beta1","kind":"Application","metadata":{"name":"a"},"spec":{"components":[{"name":"b","type":"task","properties":{"image":"x"}}]}}`))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: a}\nspec: {components: [{name: b, type: worker, properties: {image: busybox, memory: 1e400}}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		app, err := Parse(data)
		if err == nil {
			var c *Compiled
			if c, err = Compile(app); err == nil {
				if err := c.SLA().Validate(); err != nil {
					t.Fatalf("compiled SLA invalid: %v", err)
				}
				if len(c.Replicas) != len(c.App.Microservices) {
					t.Fatalf("%d replicas for %d microservices", len(c.Replicas), len(c.App.Microservices))
				}
				return
			}
		}
		var errs sla.Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error %v (%T) is not sla.Errors", err, err)
		}
	})
}

// FuzzParseComponentDefinition: ComponentDefinition manifests, and an
// Application resolved against the definition, never panic and fail with
// sla.Errors only.
func FuzzParseComponentDefinition(f *testing.F) {
	f.Add([]byte(defWasm))
	f.Add([]byte(defX86))
	f.Add([]byte("kind: ComponentDefinition\nspec: {workload: {sha256: 1}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseComponentDefinition(data)
		if err != nil {
			var errs sla.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %v (%T) is not sla.Errors", err, err)
			}
			return
		}
		app, err := ParseWith([]byte("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: a}\nspec: {components: [{name: b, type: "+d.Base+", properties: {}}]}\n"),
			Catalog{d.Base: {*d}})
		if err == nil {
			if c, err := Compile(app); err == nil {
				if err := c.SLA().Validate(); err != nil {
					t.Fatalf("compiled SLA invalid: %v", err)
				}
			}
		}
	})
}
