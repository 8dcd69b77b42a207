package oam

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/sla"
)

// quickStart is KubeVela's quick-start Application, unchanged.
const quickStart = `apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: first-vela-app
spec:
  components:
    - name: express-server
      type: webservice
      properties:
        image: oamdev/hello-world
        ports:
         - port: 8000
           expose: true
      traits:
        - type: scaler
          properties:
            replicas: 1
  policies:
    - name: target-default
      type: topology
      properties:
        clusters: ["local"]
        namespace: "default"
  workflow:
    steps:
      - name: deploy2default
        type: deploy
        properties:
          policies: ["target-default"]
`

const multi = `apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
  namespace: prod
spec:
  components:
    - name: web
      type: webservice
      properties:
        image: docker.io/library/nginx:1.27
        ports:
          - port: 80
            expose: true
        cpu: "0.5"
        memory: 256Mi
        env:
          - name: MODE
            value: web
      traits:
        - type: scaler
          properties: {replicas: 2}
        - type: expose
          properties: {port: [80], type: NodePort, rrIP: 10.30.7.7}
        - type: env
          properties:
            env: {MODE: front, LEVEL: 3}
        - type: placement
          properties: {clusters: [c1, c2], arch: [amd64], labels: {zone: north, camera: "yes"}}
    - name: queue-worker
      type: worker
      properties:
        image: busybox
        cmd: [sh, -c]
        args: ["sleep 3600"]
      traits:
        - type: resource
          properties: {requests: {cpu: 250m, memory: 1Gi}, limits: {cpu: 2}}
        - type: gpu
          properties: {count: 1}
    - name: migrate
      type: task
      properties:
        image: busybox
        cmd: ["true"]
        count: 3
  policies:
    - name: eu
      type: topology
      properties: {clusters: [c2, c3]}
`

func TestCompileQuickStart(t *testing.T) {
	app, err := Parse([]byte(quickStart))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(app)
	if err != nil {
		t.Fatal(err)
	}
	got := c.App
	if got.ApplicationName != "firstvelaapp" || got.ApplicationNamespace != "default" || len(got.Microservices) != 1 {
		t.Fatalf("application %+v", got)
	}
	ms := got.Microservices[0]
	if ms.MicroserviceName != "expressserver" || ms.Virtualization != "container" || ms.Code != "oamdev/hello-world" ||
		ms.Port != "" || len(ms.Constraints) != 0 || ms.OneShot || c.Replicas[0] != 1 {
		t.Fatalf("microservice %+v replicas %v", ms, c.Replicas)
	}
}

func TestCompileMulti(t *testing.T) {
	app, err := Parse([]byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(app)
	if err != nil {
		t.Fatal(err)
	}
	if c.App.ApplicationNamespace != "prod" || strings.Join(intsToStrings(c.Replicas), ",") != "2,1,3" {
		t.Fatalf("app %s/%s replicas %v", c.App.ApplicationNamespace, c.App.ApplicationName, c.Replicas)
	}
	web, worker, task := c.App.Microservices[0], c.App.Microservices[1], c.App.Microservices[2]
	for _, tc := range []struct{ name, got, want string }{
		{"web port", web.Port, "80:80/tcp"},
		{"web env", strings.Join(web.Environment, " "), "MODE=front LEVEL=3"},
		{"web rr_ip", web.Addresses.RRIP, "10.30.7.7"},
		{"web vcpus", itoa(web.VCPUs), "1"},
		{"web memory", itoa(web.Memory), "256"},
		{"web arch", strings.Join(web.Arch, ","), "amd64"},
		{"web node selector", web.NodeSelector["zone"] + "," + web.NodeSelector["camera"], "north,yes"},
		{"web clusters", strings.Join(web.Constraints[0].Allowed, ","), "c2"},
		{"worker name", worker.MicroserviceName, "queueworker"},
		{"worker cmd", strings.Join(worker.Cmd, "|"), "sh|-c|sleep 3600"},
		{"worker vcpus", itoa(worker.VCPUs), "2"},
		{"worker memory", itoa(worker.Memory), "1024"},
		{"worker gpus", itoa(worker.VGPUs), "1"},
		{"worker clusters", strings.Join(worker.Constraints[0].Allowed, ","), "c2,c3"},
		{"task one-shot", boolStr(task.OneShot), "true"},
		{"task port", task.Port, ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestInvalid(t *testing.T) {
	base := func(comp string) string {
		return "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: a}\nspec:\n  components:\n" + comp
	}
	for _, tc := range []struct {
		name, doc string
		fields    []string // the paths of the errors, in order
		contains  string
	}{
		{"empty", "", []string{""}, "empty"},
		{"bad YAML", "apiVersion: [\n", []string{""}, "invalid YAML"},
		{"not an object", "- a\n- b\n", []string{""}, "must be an object"},
		{"wrong apiVersion", strings.Replace(quickStart, "core.oam.dev/v1beta1", "core.oam.dev/v1alpha2", 1), []string{"apiVersion"}, "must be core.oam.dev/v1beta1"},
		{"wrong kind", strings.Replace(quickStart, "kind: Application", "kind: Deployment", 1), []string{"kind"}, "must be Application"},
		{"missing name", "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {}\nspec: {components: []}\n", []string{"metadata.name"}, "required"},
		{"no components", base("    []\n"), []string{"spec.components"}, "at least one"},
		{"unknown type", base("    - {name: x, type: helm, properties: {image: busybox}}\n"), []string{"spec.components[0].type"}, `"helm" is not supported`},
		{"unknown trait", base("    - {name: x, type: worker, properties: {image: busybox}, traits: [{type: hpa}]}\n"), []string{"spec.components[0].traits[0].type"}, `trait "hpa" is not supported`},
		{"trait on the wrong workload", base("    - {name: x, type: task, properties: {image: busybox}, traits: [{type: scaler, properties: {replicas: 2}}]}\n"),
			[]string{"spec.components[0].traits[0].type"}, "does not apply to a task"},
		{"expose on a worker", base("    - {name: x, type: worker, properties: {image: busybox}, traits: [{type: expose, properties: {port: [80]}}]}\n"),
			[]string{"spec.components[0].traits[0].type"}, "does not apply to a worker"},
		{"several at once", base("    - {name: x, type: webservice, properties: {image: busybox, ports: [{port: 0}]}, traits: [{type: scaler, properties: {replicas: -1}}]}\n    - {name: X, type: worker, properties: {image: 3}}\n"),
			[]string{"spec.components[0].properties.ports[0].port", "spec.components[0].traits[0].properties.replicas", "spec.components[1].name", "spec.components[1].properties.image"}, ""},
		{"unknown property", base("    - {name: x, type: worker, properties: {image: busybox, ports: [{port: 80}]}}\n"), []string{"spec.components[0].properties.ports"}, "unknown field"},
		{"duplicate component", base("    - {name: x, type: worker, properties: {image: busybox}}\n    - {name: x, type: worker, properties: {image: busybox}}\n"), []string{"spec.components[1].name"}, "duplicate"},
		{"bad cpu", base("    - {name: x, type: worker, properties: {image: busybox, cpu: lots}}\n"), []string{"spec.components[0].properties.cpu"}, "CPU quantity"},
		{"bad memory", base("    - {name: x, type: worker, properties: {image: busybox, memory: 5Xi}}\n"), []string{"spec.components[0].properties.memory"}, "memory quantity"},
		{"bad image", base("    - {name: x, type: worker, properties: {image: 'Not An Image'}}\n"), []string{"spec.components[0].properties.image"}, ""},
		{"bad rr ip", base("    - {name: x, type: webservice, properties: {image: busybox}, traits: [{type: expose, properties: {rrIP: 10.1.1.1}}]}\n"),
			[]string{"spec.components[0].traits[0].properties"}, "10.30.0.0/16"},
		{"nodes without one cluster", base("    - {name: x, type: worker, properties: {image: busybox}, traits: [{type: placement, properties: {nodes: [n1]}}]}\n"),
			[]string{"spec.components[0].traits[0].properties.nodes"}, "exactly one"},
		{"bad label", base("    - {name: x, type: worker, properties: {image: busybox}, traits: [{type: placement, properties: {labels: {'a b': c}}}]}\n"),
			[]string{"spec.components[0].traits[0].properties.labels"}, `label key "a b"`},
		{"two runtimes", base("    - {name: x, type: worker, properties: {image: busybox}, traits: [{type: runtime, properties: {prefer: [wasm, container]}}]}\n"),
			[]string{"spec.components[0].traits[0].properties.prefer"}, "a ComponentDefinition per implementation"},
		{"name too long in Thicket", base("    - {name: a-very-long-component-name-of-forty-chars, type: worker, properties: {image: busybox}}\n"),
			[]string{"spec.components[0].name"}, "1 to 30"},
		{"clashing names", base("    - {name: a-b, type: worker, properties: {image: busybox}}\n    - {name: ab, type: worker, properties: {image: busybox}}\n"),
			[]string{"spec.components[1].name"}, "both"},
		{"unknown policy in step", strings.Replace(quickStart, `policies: ["target-default"]`, `policies: ["nope"]`, 1),
			[]string{"spec.workflow.steps[0].properties.policies[0]"}, "names no policy"},
		{"unsupported step", strings.Replace(quickStart, "type: deploy", "type: suspend", 1), []string{"spec.workflow.steps[0].type"}, "not supported"},
		{"task restart", base("    - {name: x, type: task, properties: {image: busybox, restart: OnFailure}}\n"), []string{"spec.components[0].properties.restart"}, "not supported"},
		{"alias", base("    - &c {name: x, type: worker, properties: {image: busybox}}\n    - *c\n"), []string{"spec.components[1]"}, "aliases"},
		{"two documents", quickStart + "---\n" + quickStart, []string{""}, "one document"},
		{"placement disjoint from topology", base("    - {name: x, type: worker, properties: {image: busybox}, traits: [{type: placement, properties: {clusters: [c1]}}]}\n  policies: [{name: p, type: topology, properties: {clusters: [c2]}}]\n"),
			[]string{"spec.components[0].traits"}, "no cluster is in both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, err := Parse([]byte(tc.doc))
			if err == nil {
				_, err = Compile(app)
			}
			checkErrors(t, err, tc.fields, tc.contains)
		})
	}
}

func TestLines(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(quickStart, "replicas: 1", "replicas: many", 1)))
	if err == nil || !strings.Contains(err.Error(), "spec.components[0].traits[0].properties.replicas: must be an integer, got a string (line 17)") {
		t.Fatalf("err = %v", err)
	}
}

func TestJSON(t *testing.T) {
	doc := `{"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "j"},
	 "spec": {"components": [{"name": "w", "type": "worker", "properties": {"image": "busybox", "env": [{"name": "A", "value": "1"}]}}]}}`
	app, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(app)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.App.Microservices[0].Environment; len(got) != 1 || got[0] != "A=1" {
		t.Fatalf("environment %q", got)
	}
}

func TestIsManifest(t *testing.T) {
	for doc, want := range map[string]bool{
		quickStart:                                    true,
		`{"apiVersion": "v1", "kind": "x"}`:           true,
		`{"sla_version": "v2.0", "applications": []}`: false,
		`not a document [`:                            false,
	} {
		if got := IsManifest([]byte(doc)); got != want {
			t.Errorf("IsManifest(%.30q) = %v", doc, got)
		}
	}
}

func intsToStrings(v []int) []string {
	out := make([]string, len(v))
	for i, n := range v {
		out[i] = strconv.Itoa(n)
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func boolStr(b bool) string { return strconv.FormatBool(b) }

func TestWorkflowPlan(t *testing.T) {
	const head = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: a}\nspec:\n  components:\n" +
		"    - {name: db, type: worker, properties: {image: busybox}}\n" +
		"    - {name: migrate, type: task, properties: {image: busybox}}\n" +
		"    - {name: web, type: webservice, properties: {image: busybox}}\n"
	for _, tc := range []struct {
		name, workflow, want string
	}{
		{"no workflow", "", "deploy:0,1,2"},
		{"deploy step", "  workflow:\n    steps:\n      - {name: all, type: deploy}\n", "all:0,1,2"},
		{"in order", "  workflow:\n    steps:\n      - {name: s1, type: apply-component, properties: {component: db}}\n" +
			"      - {name: s2, type: apply-component, properties: {component: migrate}}\n      - {name: s3, type: apply-component, properties: {component: web}}\n",
			"s1:0 s2:1 s3:2"},
		{"then the rest", "  workflow:\n    steps:\n      - {name: first, type: apply-component, properties: {component: migrate}}\n      - {name: rest, type: deploy}\n",
			"first:1 rest:0,2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, err := Parse([]byte(head + tc.workflow))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Compile(app)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range c.Steps {
				got = append(got, s.Name+":"+strings.Join(intsToStrings(s.Components), ","))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("steps %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, workflow, field string }{
		{"unknown component", "  workflow:\n    steps:\n      - {name: s1, type: apply-component, properties: {component: cache}}\n      - {name: s2, type: deploy}\n", "spec.workflow.steps[0].properties.component"},
		{"applied twice", "  workflow:\n    steps:\n      - {name: s1, type: apply-component, properties: {component: db}}\n      - {name: s2, type: apply-component, properties: {component: db}}\n      - {name: s3, type: deploy}\n", "spec.workflow.steps[1].properties.component"},
		{"left out", "  workflow:\n    steps:\n      - {name: s1, type: apply-component, properties: {component: db}}\n      - {name: s2, type: apply-component, properties: {component: web}}\n", "spec.components[1].name"},
		{"no component", "  workflow:\n    steps:\n      - {name: s1, type: apply-component}\n", "spec.workflow.steps[0].properties.component"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(head + tc.workflow))
			var errs sla.Errors
			if !errors.As(err, &errs) || errs[0].Field != tc.field {
				t.Errorf("err = %v, want one at %s", err, tc.field)
			}
		})
	}
}

// checkErrors checks that err is sla.Errors at exactly fields, in order,
// and mentions contains.
func checkErrors(t *testing.T, err error, fields []string, contains string) {
	t.Helper()
	var errs sla.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want sla.Errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Field)
	}
	if strings.Join(got, " ") != strings.Join(fields, " ") {
		t.Errorf("fields %q, want %q (%v)", got, fields, err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Errorf("error %q does not mention %q", err, contains)
	}
}
