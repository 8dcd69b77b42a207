package overlay

import (
	"net/netip"
	"strings"
	"testing"
)

func TestEncodeKey(t *testing.T) {
	for _, tc := range []struct{ key, enc string }{
		{"web.0", "web.0"},
		{"App1.Svc2.3", "App1.Svc2.3"},
		{"db/1", "db_2f1"},
		{"web-1", "web_2d1"},
		{"a_b", "a_5fb"},
		{"ü", "_c3_bc"},
		{" ", "_20"},
	} {
		if got := encodeKey(tc.key); got != tc.enc {
			t.Errorf("encodeKey(%q) = %q, want %q", tc.key, got, tc.enc)
		}
		if got, err := decodeKey(tc.enc); err != nil || got != tc.key {
			t.Errorf("decodeKey(%q) = %q, %v; want %q", tc.enc, got, err, tc.key)
		}
	}
}

func TestDecodeKeyRejects(t *testing.T) {
	for _, s := range []string{"", "a-b", "a_", "a_2", "a_2F", "a_61", "a_zz", "a/b", "a b", "_2d" + strings.Repeat("x", maxKey)} {
		if k, err := decodeKey(s); err == nil {
			t.Errorf("decodeKey(%q) = %q, want error", s, k)
		}
	}
}

func FuzzDecodeKey(f *testing.F) {
	for _, s := range []string{"web.0", "db_2f1", "a_", "_c3_bc", "a-b", "a_2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := decodeKey(s)
		if err != nil {
			return
		}
		if enc := encodeKey(key); enc != s {
			t.Fatalf("decodeKey(%q) = %q, which encodes to %q", s, key, enc)
		}
		if strings.ContainsAny(s, "-/\x00") {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzEncodeKey(f *testing.F) {
	f.Add("web.0")
	f.Add("db/1-_x")
	f.Fuzz(func(t *testing.T, key string) {
		if validKey(key) != nil {
			return
		}
		enc := encodeKey(key)
		if strings.ContainsAny(enc, "-/\x00") {
			t.Fatalf("encodeKey(%q) = %q", key, enc)
		}
		if got, err := decodeKey(enc); err != nil || got != key {
			t.Fatalf("decodeKey(encodeKey(%q)) = %q, %v", key, got, err)
		}
	})
}

func TestPrefixOwnership(t *testing.T) {
	// With prefixes ending in '-' and encoded keys free of '-', a name has
	// at most one owner even when one prefix extends another.
	p1, p2 := "thk-n1-", "thk-n1-x-"
	name := p2 + encodeKey("web-0")
	rest := strings.TrimPrefix(name, p1)
	if k, err := decodeKey(rest); err == nil {
		t.Errorf("%s claims %s (key %q)", p1, name, k)
	}
	for _, p := range []string{"", "thk", "thk-/", "thk n-"} {
		if validPrefix(p) == nil {
			t.Errorf("validPrefix(%q) accepted", p)
		}
	}
}

func TestHostVethName(t *testing.T) {
	a, b := hostVethName("web.0"), hostVethName("web.1")
	if len(a) != 11 || !strings.HasPrefix(a, "thk") || a == b || a != hostVethName("web.0") {
		t.Errorf("hostVethName: %q %q", a, b)
	}
}

func TestDerivedMAC(t *testing.T) {
	m := derivedMAC("thicket-vtep", "10.64.1.0/24")
	if m[0]&1 != 0 || m[0]&2 == 0 || m.String() != derivedMAC("thicket-vtep", "10.64.1.0/24").String() {
		t.Errorf("derivedMAC %v: want stable locally administered unicast", m)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Subnet: netip.MustParsePrefix("10.64.3.0/24"), Underlay: netip.MustParseAddr("192.0.2.1")}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Bridge != "thk0" || c.VXLAN != "thkvx0" || c.VNI != 4242 || c.Port != 4789 || c.NetnsPrefix != "thk-" {
		t.Errorf("defaults: %+v", c)
	}
	for name, bad := range map[string]Config{
		"no subnet":        {Underlay: netip.MustParseAddr("192.0.2.1")},
		"unmasked subnet":  {Subnet: netip.MustParsePrefix("10.64.3.1/24"), Underlay: netip.MustParseAddr("192.0.2.1")},
		"/31":              {Subnet: netip.MustParsePrefix("10.64.3.0/31"), Underlay: netip.MustParseAddr("192.0.2.1")},
		"v6 subnet":        {Subnet: netip.MustParsePrefix("fd00::/64"), Underlay: netip.MustParseAddr("192.0.2.1")},
		"no underlay":      {Subnet: netip.MustParsePrefix("10.64.3.0/24")},
		"long bridge name": {Bridge: "abcdefghijklmnop", Subnet: netip.MustParsePrefix("10.64.3.0/24"), Underlay: netip.MustParseAddr("192.0.2.1")},
		"vni":              {VNI: 1 << 24, Subnet: netip.MustParsePrefix("10.64.3.0/24"), Underlay: netip.MustParseAddr("192.0.2.1")},
		"prefix":           {NetnsPrefix: "thk", Subnet: netip.MustParsePrefix("10.64.3.0/24"), Underlay: netip.MustParseAddr("192.0.2.1")},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
