package containerd

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// containerd identifiers: alphanumerics separated by single '.', '_' or '-',
// at most 76 characters.
const maxIDLength = 76

var (
	cleanNode = regexp.MustCompile(`^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$`)
	cleanKey  = regexp.MustCompile(`^[A-Za-z0-9]+([.-][A-Za-z0-9]+)*$`)
)

// ContainerID is the containerd container id of instance key on node.
//
// When both are already valid and short enough it is "<node>_<key>" (e.g.
// "worker1_svc.0"), which has exactly one '_'. Otherwise both are sanitised
// (every run of other characters becomes one '-'), shortened, and a hash of
// the originals is appended: "<node>_<key>_<hash>", which has exactly two.
// Different (node, key) pairs therefore never share an id.
func ContainerID(node, key string) string {
	if cleanNode.MatchString(node) && cleanKey.MatchString(key) && len(node)+1+len(key) <= maxIDLength {
		return node + "_" + key
	}
	sum := sha256.Sum256([]byte(node + "\x00" + key))
	hash := hex.EncodeToString(sum[:6])
	n := sanitise(node, false, 24)
	k := sanitise(key, true, maxIDLength-len(n)-len(hash)-2)
	return n + "_" + k + "_" + hash
}

// sanitise keeps alphanumerics (and dots if keepDots), turns every other
// character into '-', collapses runs of separators, shortens to max and
// trims separators from both ends.
func sanitise(s string, keepDots bool, max int) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == '.' && keepDots:
			b.WriteByte('.')
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(collapseSeparators(b.String()), ".-")
	if len(out) > max {
		out = strings.Trim(out[:max], ".-")
	}
	if out == "" {
		out = "x"
	}
	return out
}

// collapseSeparators replaces runs of '.' and '-' by their first character.
func collapseSeparators(s string) string {
	var b strings.Builder
	prevSep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		isSep := c == '.' || c == '-'
		if isSep && prevSep {
			continue
		}
		prevSep = isSep
		b.WriteByte(c)
	}
	return b.String()
}

// hostname is the container's host name: the instance key as a DNS label.
func hostname(key string) string {
	return strings.ToLower(sanitise(key, false, 63))
}
