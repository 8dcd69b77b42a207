package oam

import (
	"slices"
	"testing"

	"github.com/thicket-edge/thicket/contract/sla"
)

// TestAllowFromTrait: the allow-from trait (or network-policy) becomes the
// SLA's allow_from; malformed entries fail at the entry and compile
// nothing.
func TestAllowFromTrait(t *testing.T) {
	for _, tc := range []struct {
		traits string
		want   []string
	}{
		{"{type: allow-from, properties: {from: [bob, carol/shop, carol/shop/cart]}}", []string{"bob", "carol/shop", "carol/shop/cart"}},
		{"{type: network-policy, properties: {from: [bob]}}", []string{"bob"}},
		{"{type: allow-from, properties: {from: []}}", nil},
		{"", nil},
	} {
		app, err := Parse([]byte(jobsApp(tc.traits)))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compile(app)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.SLA().Applications[0].Microservices[0].AllowFrom; !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("%s: allow_from %q, want %q", tc.traits, got, tc.want)
		}
	}
	if !slices.ContainsFunc(TraitDefinitions(), func(d TraitDefinition) bool { return d.Name == TraitAllowFrom }) {
		t.Error("the allow-from trait is not listed")
	}

	for _, tc := range []struct {
		name, traits string
		field        string
		contains     string
	}{
		{"no from", "{type: allow-from, properties: {}}", "spec.components[0].traits[0].properties.from", "required"},
		{"not a list", "{type: allow-from, properties: {from: bob}}", "spec.components[0].traits[0].properties.from", "must be a list"},
		{"bad user", "{type: allow-from, properties: {from: [bob, 'bo b']}}", "spec.components[0].traits[0].properties.from[1]", "bo b"},
		{"too deep", "{type: allow-from, properties: {from: [bob/shop/web/x]}}", "spec.components[0].traits[0].properties.from[0]", "bob/shop/web/x"},
		{"duplicate", "{type: network-policy, properties: {from: [bob, bob]}}", "spec.components[0].traits[0].properties.from[1]", "duplicate"},
		{"unknown field", "{type: allow-from, properties: {from: [bob], to: [x]}}", "spec.components[0].traits[0].properties.to", "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) { oneError(t, jobsApp(tc.traits), tc.field, tc.contains) })
	}
}

// TestIsolationPolicy: the isolation policy sets the application's unit of
// isolation; a unit other than user or application fails at the field.
func TestIsolationPolicy(t *testing.T) {
	app := func(policies string) string {
		return "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: a}\nspec:\n  components:\n" +
			"    - {name: cams, type: worker, properties: {image: busybox}}\n  policies: [" + policies + "]\n"
	}
	for _, tc := range []struct{ policies, want string }{
		{"{name: own, type: isolation, properties: {unit: application}}", sla.IsolationApplication},
		{"{name: own, type: isolation, properties: {unit: user}}", sla.IsolationUser},
		{"{name: t, type: topology, properties: {clusters: [local]}}", ""},
	} {
		a, err := Parse([]byte(app(tc.policies)))
		if err != nil {
			t.Fatalf("%s: %v", tc.policies, err)
		}
		c, err := Compile(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.SLA().Applications[0].Isolation; got != tc.want {
			t.Errorf("%s: isolation %q, want %q", tc.policies, got, tc.want)
		}
	}
	for _, tc := range []struct{ policies, field, contains string }{
		{"{name: own, type: isolation, properties: {unit: namespace}}", "spec.policies[0].properties.unit", "not a unit of isolation"},
		{"{name: own, type: isolation}", "spec.policies[0].properties.unit", "required"},
		{"{name: own, type: isolation, properties: {unit: user, x: 1}}", "spec.policies[0].properties.x", "unknown field"},
	} {
		t.Run(tc.policies, func(t *testing.T) { oneError(t, app(tc.policies), tc.field, tc.contains) })
	}
}
