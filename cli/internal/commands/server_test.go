package commands

import "testing"

func TestNormalizeServer(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:10000":          "https://localhost:10000",
		"http://10.0.0.1:10000/":   "http://10.0.0.1:10000",
		" https://root.example ":   "https://root.example",
		"http://root/prefix/":      "http://root/prefix",
		"ftp://root":               "",
		"":                         "",
		"http://":                  "",
		"http://root:10000/?a=b":   "",
		"http://[::1]:10000":       "http://[::1]:10000",
		"root.example.org":         "https://root.example.org",
		"HTTP://Root.Example:8080": "http://Root.Example:8080",
	} {
		got, err := NormalizeServer(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("NormalizeServer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
