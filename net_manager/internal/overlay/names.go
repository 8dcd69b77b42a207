package overlay

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
)

// maxNetnsName is the longest name a file under /run/netns may have (NAME_MAX).
const maxNetnsName = 255

// maxKey bounds instance keys; the host veth alias (IFALIAS) holds up to 128 bytes.
const maxKey = 128

// validKey reports whether key can name an instance.
func validKey(key string) error {
	if key == "" {
		return errors.New("empty instance key")
	}
	if len(key) > maxKey {
		return fmt.Errorf("instance key %.20q...: longer than %d bytes", key, maxKey)
	}
	return nil
}

// encodeKey turns an instance key into the part of a namespace name after the
// prefix. It is reversible (decodeKey) and canonical: ASCII letters, digits and
// '.' stand for themselves, every other byte (including '-' and '_') becomes
// '_' plus two lower-case hex digits. Because an encoded key never contains
// '-', and every prefix ends with '-', a namespace name belongs to exactly one
// prefix even when one prefix is a prefix of another ("thk-n1-" and
// "thk-n1-x-").
func encodeKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if plainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteString(hex.EncodeToString([]byte{c}))
	}
	return b.String()
}

// decodeKey reverses encodeKey; it rejects every string encodeKey cannot
// produce, so decodeKey(s) == k implies encodeKey(k) == s.
func decodeKey(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty encoded key")
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case plainByte(c):
			b.WriteByte(c)
		case c == '_':
			if i+2 >= len(s) {
				return "", fmt.Errorf("encoded key %q: truncated escape at %d", s, i)
			}
			hi, ok1 := lowerHex(s[i+1])
			lo, ok2 := lowerHex(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("encoded key %q: bad escape at %d", s, i)
			}
			v := hi<<4 | lo
			if plainByte(v) {
				return "", fmt.Errorf("encoded key %q: needless escape at %d", s, i)
			}
			b.WriteByte(v)
			i += 2
		default:
			return "", fmt.Errorf("encoded key %q: byte %q at %d", s, c, i)
		}
	}
	key := b.String()
	if err := validKey(key); err != nil {
		return "", err
	}
	return key, nil
}

func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.'
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// validPrefix checks a namespace prefix: letters, digits, '.', '_' and '-',
// ending with '-' (see encodeKey for why).
func validPrefix(p string) error {
	if p == "" || !strings.HasSuffix(p, "-") {
		return fmt.Errorf("netns prefix %q: must end with '-'", p)
	}
	if len(p) > 100 {
		return fmt.Errorf("netns prefix %q: longer than 100 bytes", p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; !plainByte(c) && c != '-' && c != '_' {
			return fmt.Errorf("netns prefix %q: byte %q not allowed (letters, digits, '.', '_', '-')", p, c)
		}
	}
	return nil
}

// hostVethName is the name of the host end of an instance's veth pair:
// "thk" and 8 hex digits of a hash of the key (11 bytes, IFNAMSIZ is 16).
// Collisions are detected through the alias, which holds the full key.
func hostVethName(key string) string {
	sum := sha256.Sum256([]byte("thicket-veth\x00" + key))
	return "thk" + hex.EncodeToString(sum[:4])
}

// derivedMAC returns a locally administered unicast MAC address that depends
// only on its inputs, so that a re-created device keeps its address and
// peers' forwarding entries stay valid.
func derivedMAC(parts ...string) net.HardwareAddr {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	mac := net.HardwareAddr(append([]byte(nil), sum[:6]...))
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}
