package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/thicket-edge/thicket/contract/oam"
)

// TestOAMExamples keeps the OAM examples deployable: each parses and
// compiles as the root does, names no service IP another example uses,
// and the README's table of examples describes it.
func TestOAMExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "oam", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d OAM examples", len(files))
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `sla_examples/oam/([^`]+\\.yaml)` \\|").FindAllStringSubmatch(readme(t), -1) {
		documented[m[1]] = true
	}
	ips := map[string]string{}
	slas, _ := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	for _, f := range slas {
		for _, a := range loadExample(t, f).Applications {
			for _, m := range a.Microservices {
				if m.Addresses != nil {
					ips[m.Addresses.RRIP], ips[m.Addresses.ClosestIP] = filepath.Base(f), filepath.Base(f)
				}
			}
		}
	}
	for _, file := range files {
		base := filepath.Base(file)
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !oam.IsManifest(data) {
				t.Fatal("not told apart from an SLA")
			}
			// A file may hold ComponentDefinitions before its
			// Application, as thicket apply takes them.
			cat, apps := oam.Catalog{}, 0
			var app *oam.Application
			for _, doc := range oam.Documents(data) {
				if oam.ManifestKind(doc) == oam.KindComponentDefinition {
					d, err := oam.ParseComponentDefinition(doc)
					if err != nil {
						t.Fatal(err)
					}
					cat[d.Base] = append(cat[d.Base], *d)
					continue
				}
				apps++
				if app, err = oam.ParseWith(doc, cat); err != nil {
					t.Fatal(err)
				}
			}
			if apps != 1 {
				t.Fatalf("%d Applications, want 1", apps)
			}
			c, err := oam.Compile(app)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range c.App.Microservices {
				if m.Addresses != nil && m.Addresses.RRIP != "" {
					if other, ok := ips[m.Addresses.RRIP]; ok {
						t.Errorf("service IP %s is also %s's", m.Addresses.RRIP, other)
					}
					ips[m.Addresses.RRIP] = base
				}
			}
			if !documented[base] {
				t.Errorf("README.md: no row for sla_examples/oam/%s in the table of examples", base)
			}
		})
	}
}
