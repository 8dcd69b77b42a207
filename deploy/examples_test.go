package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/sla"
)

const examplesDir = repo + "/sla_examples"

// loadExample decodes and validates one file of sla_examples/ as the root
// does: a full SLA (POST /api/application/), or for *.services.json the
// services-only form, which the validator checks as the microservices of an
// existing application (POST /api/service/).
func loadExample(t *testing.T, file string) *sla.SLA {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	services := strings.HasSuffix(file, ".services.json")
	if services {
		data = []byte(`{"applications": [{"applicationID": "existing", "microservices": ` +
			string(servicesList(t, data)) + `}]}`)
	}
	s, err := sla.Decode(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if services {
		err = s.ValidateServices()
	} else {
		err = s.Validate()
	}
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	return s
}

// servicesList returns the raw "microservices" list of the services form.
func servicesList(t *testing.T, data []byte) []byte {
	t.Helper()
	var doc struct {
		Microservices json.RawMessage `json:"microservices"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Microservices) == 0 {
		t.Fatalf("services form: want {\"microservices\": [...]}: %v", err)
	}
	return doc.Microservices
}

// TestExamples keeps every example deployable, together with the others:
// it passes the validator, its names and service IPs are not taken by
// another example (the root answers 409 to the second), container images
// name their registry, and the README's table of examples describes it.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 9 {
		t.Fatalf("found %d examples in %s", len(files), examplesDir)
	}
	documented := readmeExamples(t)
	apps := map[string]string{} // name/namespace -> file
	ips := map[string]string{}  // service IP -> file
	kinds := map[string]bool{}
	for _, file := range files {
		base := filepath.Base(file)
		t.Run(base, func(t *testing.T) {
			s := loadExample(t, file)
			if !documented[base] {
				t.Errorf("README.md: no row for %s in the table of examples", base)
			}
			for _, a := range s.Applications {
				if a.ApplicationName != "" {
					key := a.ApplicationName + "/" + a.ApplicationNamespace
					if other, ok := apps[key]; ok {
						t.Errorf("application %s is also %s's", key, other)
					}
					apps[key] = base
				}
				for _, m := range a.Microservices {
					kinds[m.Virtualization] = true
					if m.Addresses != nil {
						for _, ip := range []string{m.Addresses.RRIP, m.Addresses.ClosestIP} {
							if other, ok := ips[ip]; ok && ip != "" {
								t.Errorf("service IP %s is also %s's", ip, other)
							} else if ip != "" {
								ips[ip] = base
							}
						}
					}
					if m.Virtualization == sla.VirtContainer && !qualifiedImageRE.MatchString(m.Code) {
						t.Errorf("%s: image %q: name the registry and tag (docker.io/library/nginx:1.27)", m.MicroserviceName, m.Code)
					}
				}
			}
		})
	}
	for base := range documented {
		if _, err := os.Stat(filepath.Join(examplesDir, base)); err != nil {
			t.Errorf("README.md describes %s: %v", base, err)
		}
	}
	for _, k := range []string{sla.VirtContainer, sla.VirtWasm, sla.VirtUnikernel} {
		if !kinds[k] {
			t.Errorf("no example runs %s", k)
		}
	}
}

var qualifiedImageRE = regexp.MustCompile(`^[a-z0-9.-]+\.[a-z]+(:[0-9]+)?/[^:@]+[:@].+$`)

// readmeExamples returns the files the README's table of examples lists:
// rows "| `sla_examples/x.json` | what it shows | how to run it |".
func readmeExamples(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `sla_examples/([^`]+\\.json)` \\|[^|\\n]+\\|[^|\\n]+\\|\\s*$").FindAllStringSubmatch(readme(t), -1) {
		out[m[1]] = true
	}
	return out
}

func readme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
