package oam

import (
	"slices"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/sla"
)

const digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

const defWasm = `apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata:
  name: va-wasm
  annotations:
    definition.oam.dev/description: video analytics as a wasm module
spec:
  baseComponent: video-analytics
  workload:
    virtualization: wasm
    image: https://example.org/va.wasm
    sha256: ` + digest + `
    cpu: 100m
    memory: 32Mi
`

const defX86 = `apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata: {name: va-x86}
spec:
  baseComponent: video-analytics
  workload: {virtualization: container, image: docker.io/x/va:1, arch: [amd64], cmd: [va, --gpu=off], memory: 256Mi}
`

const defArm = `apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata: {name: va-arm}
spec:
  baseComponent: video-analytics
  workload: {virtualization: unikernel, image: https://example.org/va-arm64.img, arch: [arm64]}
`

func mustDef(t *testing.T, doc string) ComponentDefinition {
	t.Helper()
	d, err := ParseComponentDefinition([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return *d
}

func TestParseComponentDefinition(t *testing.T) {
	d := mustDef(t, defWasm)
	want := ComponentDefinition{Name: "va-wasm", Base: "video-analytics", Description: "video analytics as a wasm module",
		Workload: TypeWorker, Virtualization: sla.VirtWasm, Image: "https://example.org/va.wasm", SHA256: digest, MilliCPU: 100, MemoryMB: 32}
	if !equalDef(d, want) {
		t.Fatalf("got %+v\nwant %+v", d, want)
	}
	if got := d.Code(); got != "https://example.org/va.wasm#sha256="+digest {
		t.Errorf("Code() = %q", got)
	}
	if got := (&ComponentDefinition{Virtualization: sla.VirtContainer, Image: "x/y:1", SHA256: digest}).Code(); got != "x/y:1@sha256:"+digest {
		t.Errorf("container Code() = %q", got)
	}
	if k := ManifestKind([]byte(defWasm)); k != KindComponentDefinition {
		t.Errorf("ManifestKind = %q", k)
	}
}

func equalDef(a, b ComponentDefinition) bool {
	return a.Name == b.Name && a.Base == b.Base && a.Description == b.Description && a.Workload == b.Workload &&
		a.Virtualization == b.Virtualization && a.Image == b.Image && a.SHA256 == b.SHA256 && slices.Equal(a.Cmd, b.Cmd) &&
		slices.Equal(a.Arch, b.Arch) && a.MilliCPU == b.MilliCPU && a.MemoryMB == b.MemoryMB
}

func TestInvalidComponentDefinition(t *testing.T) {
	base := func(workload string) string {
		return "apiVersion: core.oam.dev/v1beta1\nkind: ComponentDefinition\nmetadata: {name: d}\nspec:\n  baseComponent: b\n  workload: " + workload + "\n"
	}
	for _, tc := range []struct {
		name, doc string
		fields    []string
		contains  string
	}{
		{"empty", "", []string{""}, "empty"},
		{"wrong kind", strings.Replace(defWasm, "kind: ComponentDefinition", "kind: TraitDefinition", 1), []string{"kind"}, "must be ComponentDefinition"},
		{"no base", "apiVersion: core.oam.dev/v1beta1\nkind: ComponentDefinition\nmetadata: {name: d}\nspec: {workload: {virtualization: wasm, image: 'https://h/m.wasm'}}\n",
			[]string{"spec.baseComponent"}, "required"},
		{"base is a built-in type", strings.Replace(defWasm, "baseComponent: video-analytics", "baseComponent: webservice", 1),
			[]string{"spec.baseComponent"}, "built-in"},
		{"no virtualization", base("{image: x}"), []string{"spec.workload.virtualization"}, "required"},
		{"unknown virtualization", base("{virtualization: vm, image: x}"), []string{"spec.workload.virtualization"}, "not a virtualization"},
		{"unknown workload type", base("{type: daemon, virtualization: wasm, image: x}"), []string{"spec.workload.type"}, "not a workload type"},
		{"bad digest", base("{virtualization: wasm, image: 'https://h/m.wasm', sha256: abc}"), []string{"spec.workload.sha256"}, "64 hexadecimal"},
		{"digest twice", base("{virtualization: container, image: 'x/y@sha256:" + digest + "', sha256: " + digest + "}"), []string{"spec.workload.sha256"}, "names a digest already"},
		{"bad arch", base("{virtualization: wasm, image: x, arch: [sparc]}"), []string{"spec.workload.arch[0]"}, "not a supported architecture"},
		{"unknown field", base("{virtualization: wasm, image: x, gpu: 1}"), []string{"spec.workload.gpu"}, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseComponentDefinition([]byte(tc.doc))
			checkErrors(t, err, tc.fields, tc.contains)
		})
	}
}

const overloadedApp = `apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: cams}
spec:
  components:
    - name: analytics
      type: video-analytics
      properties:
        memory: 128Mi
        env: [{name: FPS, value: "5"}]
      traits:
%s`

func TestCompileOverloaded(t *testing.T) {
	cat := Catalog{"video-analytics": {mustDef(t, defX86), mustDef(t, defWasm), mustDef(t, defArm)}}
	for _, tc := range []struct {
		name   string
		traits string
		want   []string // name/virtualization/arch/memory, preference order
	}{
		{"registration order", "        - {type: scaler, properties: {replicas: 2}}\n",
			[]string{"va-x86/container/amd64/256", "va-wasm/wasm//32", "va-arm/unikernel/arm64/128"}},
		{"runtime preference orders and restricts", "        - {type: runtime, properties: {prefer: [wasm, container]}}\n",
			[]string{"va-wasm/wasm//32", "va-x86/container/amd64/256"}},
		{"placement arch narrows", "        - {type: placement, properties: {arch: [arm64]}}\n",
			[]string{"va-wasm/wasm/arm64/32", "va-arm/unikernel/arm64/128"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, err := ParseWith([]byte(strings.ReplaceAll(overloadedApp, "%s", tc.traits)), cat)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Compile(app)
			if err != nil {
				t.Fatal(err)
			}
			ms := c.App.Microservices[0]
			var got []string
			for _, im := range ms.Implementations() {
				got = append(got, im.Name+"/"+im.Virtualization+"/"+strings.Join(im.Arch, ",")+"/"+itoa(im.Memory))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("implementations %q, want %q", got, tc.want)
			}
			if ms.Environment[0] != "FPS=5" || ms.ImplementationName != strings.Split(tc.want[0], "/")[0] {
				t.Errorf("microservice %+v", ms)
			}
			if ms.Alternatives[0].Code == "" || (ms.Alternatives[0].Virtualization == sla.VirtWasm && !strings.Contains(ms.Alternatives[0].Code, "#sha256="+digest)) {
				t.Errorf("alternative code %q", ms.Alternatives[0].Code)
			}
		})
	}
}

func TestInvalidOverloaded(t *testing.T) {
	cat := Catalog{"video-analytics": {mustDef(t, defX86), mustDef(t, defWasm)}}
	for _, tc := range []struct {
		name, traits, props string
		fields              []string
		contains            string
	}{
		{"unknown base", "", "", []string{"spec.components[0].type"}, "other-base (base component)"},
		{"image on a base component", "", "        image: x\n", []string{"spec.components[0].properties.image"}, "unknown field"},
		{"runtime with no implementation", "        - {type: runtime, properties: {prefer: [unikernel]}}\n", "",
			[]string{"spec.components[0].traits[0].properties.prefer"}, "no implementation of unikernel"},
		{"placement arch no implementation runs", "        - {type: placement, properties: {arch: [riscv64]}}\n", "",
			[]string{"spec.components[0].traits"}, "none of base component"},
		{"expose on a worker base", "        - {type: expose, properties: {port: [80]}}\n", "",
			[]string{"spec.components[0].traits[0].type"}, "does not apply to a worker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.ReplaceAll(overloadedApp, "%s", tc.traits+"        - {type: scaler, properties: {replicas: 1}}\n")
			doc = strings.Replace(doc, "        memory: 128Mi\n", "        memory: 128Mi\n"+tc.props, 1)
			use := cat
			switch tc.name {
			case "unknown base":
				use = Catalog{"other-base": cat["video-analytics"]}
			case "placement arch no implementation runs":
				use = Catalog{"video-analytics": {mustDef(t, defX86), mustDef(t, defArm)}}
			}
			app, err := ParseWith([]byte(doc), use)
			if err == nil {
				_, err = Compile(app)
			}
			checkErrors(t, err, tc.fields, tc.contains)
		})
	}
}

func TestDocuments(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a: 1\n", []string{"a: 1\n"}},
		{"---\na: 1\n---\n\n--- \nb: 2\n", []string{"a: 1\n", "b: 2\n"}},
		{"a: '---'\n---\r\nb: 2", []string{"a: '---'\n", "b: 2"}},
		{"", nil},
	} {
		var got []string
		for _, d := range Documents([]byte(tc.in)) {
			got = append(got, string(d))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Documents(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
