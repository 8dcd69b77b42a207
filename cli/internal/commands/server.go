package commands

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DefaultServer is the server when neither a flag nor a login names one.
const DefaultServer = "https://localhost:10000"

// NormalizeServer turns "host:port" (HTTPS) or "http(s)://host:port/" into a base URL
// without a trailing slash.
func NormalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty server URL")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("server URL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server URL %q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("server URL %q: no query or fragment expected", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}
