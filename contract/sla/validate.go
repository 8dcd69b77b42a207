package sla

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/thicket-edge/thicket/internal/geo"
)

// ServiceNetwork is the network service IPs (rr_ip, closest_ip) are taken from.
var ServiceNetwork = netip.MustParsePrefix("10.30.0.0/16")

// NameRE is what application, namespace and microservice names must match.
var NameRE = regexp.MustCompile(`^[a-zA-Z0-9]{1,30}$`)

// Limits beyond the reference format, as sanity caps.
const (
	maxDescLen = 500     // characters in application_desc
	maxMemory  = 1 << 20 // MB
	maxVCPUs   = 1024
)

// archs are the architectures a microservice's arch list may name.
var archs = []string{"amd64", "arm64", "arm", "riscv64"}

// clusterNameRE is what cluster and node names in constraints must match. It
// is wider than NameRE because cluster names and host names in the reference
// may contain '_', '-' and '.'.
var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// imageRefRE matches an OCI image reference as understood by containerd and
// docker: [domain[:port]/]path[:tag][@digest], path components in lower case.
var imageRefRE = func() *regexp.Regexp {
	const (
		domainComp = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		domain     = `(?:` + domainComp + `(?:\.` + domainComp + `)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?`
		pathComp   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
		name       = `(?:` + domain + `/)?` + pathComp + `(?:/` + pathComp + `)*`
		tag        = `[\w][\w.-]{0,127}`
		digest     = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	)
	return regexp.MustCompile(`^` + name + `(?::` + tag + `)?(?:@` + digest + `)?$`)
}()

// Validate checks a complete SLA as posted to POST /api/application/. It
// returns nil or Errors listing every problem found, in document order.
func (s *SLA) Validate() error {
	v := newValidator()
	if s == nil {
		v.errs.add("", "the SLA is empty")
		return v.errs.asError()
	}
	v.version(s.SLAVersion, true)
	if len(s.Applications) == 0 {
		v.errs.add("applications", "must contain at least one application")
	}
	apps := make(map[string]string) // "name.namespace" -> path
	for i := range s.Applications {
		path := "applications[" + strconv.Itoa(i) + "]"
		a := &s.Applications[i]
		v.application(path, a, false, apps)
		v.microservices(path, a.Microservices)
	}
	return v.errs.asError()
}

// ValidateServices checks an SLA as posted to POST /api/service/, which adds
// microservices to existing applications: every application needs a
// non-empty applicationID; application_name and application_namespace may be
// empty but must be valid names if given; sla_version may be empty but must
// be "v2.0" if given. Microservices are checked as in Validate.
func (s *SLA) ValidateServices() error {
	v := newValidator()
	if s == nil {
		v.errs.add("", "the SLA is empty")
		return v.errs.asError()
	}
	v.version(s.SLAVersion, false)
	if len(s.Applications) == 0 {
		v.errs.add("applications", "must contain at least one application")
	}
	for i := range s.Applications {
		path := "applications[" + strconv.Itoa(i) + "]"
		a := &s.Applications[i]
		v.application(path, a, true, nil)
		v.microservices(path, a.Microservices)
	}
	return v.errs.asError()
}

// ValidateMicroservice checks one microservice. path is its JSON path, e.g.
// "applications[0].microservices[1]", used as prefix of the error fields.
// It returns nil if the microservice is valid.
func ValidateMicroservice(path string, m *Microservice) Errors {
	v := newValidator()
	if m == nil {
		v.errs.add(path, "is empty")
		return v.errs
	}
	v.microservice(path, m, nil)
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// validator collects errors and the state needed for checks across
// microservices.
type validator struct {
	errs Errors
	ips  map[netip.Addr]string // service IP -> path of its first use
}

func newValidator() *validator {
	return &validator{ips: make(map[netip.Addr]string)}
}

func (v *validator) version(ver string, required bool) {
	switch {
	case ver == Version:
	case ver == "" && !required:
	case ver == "":
		v.errs.add("sla_version", fmt.Sprintf("is required and must be %q", Version))
	default:
		v.errs.add("sla_version", fmt.Sprintf("must be %q, got %q", Version, ver))
	}
}

// application checks the fields of one application other than its
// microservices. forService relaxes the rules for POST /api/service/. apps,
// if not nil, records the applications already defined in the SLA.
func (v *validator) application(path string, a *Application, forService bool, apps map[string]string) {
	if forService && a.ApplicationID == "" {
		v.errs.add(join(path, "applicationID"), "is required to add services to an existing application")
	}
	v.name(join(path, "application_name"), a.ApplicationName, !forService)
	v.name(join(path, "application_namespace"), a.ApplicationNamespace, !forService)
	if apps != nil && NameRE.MatchString(a.ApplicationName) && NameRE.MatchString(a.ApplicationNamespace) {
		key := a.ApplicationName + "." + a.ApplicationNamespace
		if prev, dup := apps[key]; dup {
			v.errs.add(join(path, "application_name"), fmt.Sprintf(
				"application %q in namespace %q is already defined by %s", a.ApplicationName, a.ApplicationNamespace, prev))
		} else {
			apps[key] = path
		}
	}
	if n := utf8.RuneCountInString(a.ApplicationDesc); n > maxDescLen {
		v.errs.add(join(path, "application_desc"), fmt.Sprintf("is %d characters long, at most %d are allowed", n, maxDescLen))
	}
	switch {
	case forService && a.Isolation != "":
		v.errs.add(join(path, "isolation"), "is set when the application is created, not when services are added")
	case a.Isolation != "" && a.Isolation != IsolationUser && a.Isolation != IsolationApplication:
		v.errs.add(join(path, "isolation"), fmt.Sprintf("%q is not a unit of isolation: %s (the default) or %s", a.Isolation, IsolationUser, IsolationApplication))
	}
}

// microservices checks the microservice list of the application at path.
func (v *validator) microservices(path string, ms []Microservice) {
	if len(ms) == 0 {
		v.errs.add(join(path, "microservices"), "must contain at least one microservice")
	}
	names := make(map[string]string) // microservice name -> path
	for j := range ms {
		v.microservice(join(path, "microservices["+strconv.Itoa(j)+"]"), &ms[j], names)
	}
}

// name checks a name against NameRE.
func (v *validator) name(field, s string, required bool) {
	switch {
	case s == "" && !required:
	case s == "":
		v.errs.add(field, "is required")
	case !NameRE.MatchString(s):
		v.errs.add(field, fmt.Sprintf("%q is not a valid name: use 1 to 30 letters and digits only", s))
	}
}

// microservice checks one microservice. names, if not nil, records the
// microservice names already used in the application.
func (v *validator) microservice(path string, m *Microservice, names map[string]string) {
	f := func(name string) string { return join(path, name) }

	v.name(f("microservice_name"), m.MicroserviceName, true)
	if names != nil && NameRE.MatchString(m.MicroserviceName) {
		if prev, dup := names[m.MicroserviceName]; dup {
			v.errs.add(f("microservice_name"), fmt.Sprintf("duplicate microservice name %q (already used by %s)", m.MicroserviceName, prev))
		} else {
			names[m.MicroserviceName] = path
		}
	}
	v.name(f("microservice_namespace"), m.MicroserviceNamespace, true)

	switch m.Virtualization {
	case VirtContainer, VirtUnikernel, VirtWasm:
	case "":
		v.errs.add(f("virtualization"), "is required: container, unikernel or wasm")
	default:
		v.errs.add(f("virtualization"), fmt.Sprintf("%q is not supported: use container, unikernel or wasm", m.Virtualization))
	}

	for i, e := range m.Environment {
		if msg := checkEnv(e); msg != "" {
			v.errs.add(f("environment["+strconv.Itoa(i)+"]"), msg)
		}
	}

	v.resource(f("memory"), m.Memory, maxMemory)
	v.resource(f("vcpus"), m.VCPUs, maxVCPUs)
	v.resource(f("vgpus"), m.VGPUs, 0)
	v.resource(f("vtpus"), m.VTPUs, 0)
	v.resource(f("bandwidth_in"), m.BandwidthIn, 0)
	v.resource(f("bandwidth_out"), m.BandwidthOut, 0)
	v.resource(f("storage"), m.Storage, 0)

	codes := v.code(f("code"), m.Virtualization, m.Code)

	for i, a := range m.Arch {
		if !isArch(a) {
			v.errs.add(f("arch["+strconv.Itoa(i)+"]"), fmt.Sprintf("%q is not a supported architecture: use one of %s", a, strings.Join(archs, ", ")))
		}
	}
	if m.Virtualization == VirtUnikernel && len(m.Arch) > 0 && codes > 0 && len(m.Arch) != codes {
		v.errs.add(f("arch"), fmt.Sprintf("has %d entries but code has %d; give one architecture per code entry, in the same order", len(m.Arch), codes))
	}

	if _, err := ParsePorts(m.Port); err != nil {
		v.errs.add(f("port"), err.Error())
	}

	if m.Addresses != nil {
		rr := v.serviceIP(f("addresses.rr_ip"), m.Addresses.RRIP)
		v.recordIP(f("addresses.rr_ip"), rr)
		cl := v.serviceIP(f("addresses.closest_ip"), m.Addresses.ClosestIP)
		if cl.IsValid() && cl == rr {
			v.errs.add(f("addresses.closest_ip"), "must differ from rr_ip")
		} else {
			v.recordIP(f("addresses.closest_ip"), cl)
		}
	}

	for i := range m.Constraints {
		v.constraint(f("constraints["+strconv.Itoa(i)+"]"), &m.Constraints[i])
	}
	if d := m.Disconnect; d != nil {
		v.disconnect(f("disconnect"), d, m.OneShot)
	}
	v.completions(f, m)
	v.errs = append(v.errs, ValidateJobs(f("jobs"), m.Jobs)...)
	if msg := checkJobsLease(m.JobsLease); msg != "" {
		v.errs.add(f("jobs_lease_s"), msg)
	}
	if s := m.Security; s != nil {
		v.security(f("security"), m.Virtualization, s)
	}
	v.alternatives(path, m)
	if err := CheckLabels(m.NodeSelector); err != nil {
		v.errs.add(f("node_selector"), err.Error())
	}
	v.errs = append(v.errs, ValidateAllowFrom(f("allow_from"), m.AllowFrom)...)
}

// disconnect checks a disconnect policy.
func (v *validator) disconnect(path string, d *Disconnect, oneShot bool) {
	if d.Replace != nil && *d.Replace && oneShot {
		v.errs.add(join(path, "replace"), "cannot be true for a one_shot service: it runs at most once, so it is never replaced while its node or cluster is silent")
	}
	for _, x := range []struct {
		name string
		n    int
	}{{"replace_after", d.ReplaceAfter}, {"stop_after", d.StopAfter}} {
		if x.n < 0 || x.n > maxDisconnectSeconds {
			v.errs.add(join(path, x.name), fmt.Sprintf("must be between 0 and %d seconds", maxDisconnectSeconds))
		}
	}
	switch d.Reconcile {
	case "", KeepOriginal, KeepReplacement:
	default:
		v.errs.add(join(path, "reconcile"), fmt.Sprintf("%q is not a choice: use %s or %s", d.Reconcile, KeepOriginal, KeepReplacement))
	}
}

// resource checks a resource amount: not negative and, if max > 0, at most max.
func (v *validator) resource(field string, n, max int) {
	switch {
	case n < 0:
		v.errs.add(field, fmt.Sprintf("must not be negative, got %d", n))
	case max > 0 && n > max:
		v.errs.add(field, fmt.Sprintf("must be at most %d, got %d", max, n))
	}
}

// code checks the code field for the given virtualization and returns the
// number of code entries (unikernel and wasm) or 0.
func (v *validator) code(field, virt, code string) int {
	if code == "" {
		v.errs.add(field, "is required")
		return 0
	}
	if strings.IndexFunc(code, unicode.IsSpace) >= 0 {
		v.errs.add(field, "must not contain whitespace")
		return 0
	}
	switch virt {
	case VirtContainer:
		if strings.Contains(code, "://") {
			v.errs.add(field, fmt.Sprintf("%q must be an image reference without a URL scheme, such as docker.io/library/nginx:latest", code))
		} else if len(code) > 4096 || !imageRefRE.MatchString(code) {
			v.errs.add(field, fmt.Sprintf("%q is not a valid image reference (e.g. docker.io/library/nginx:latest; repository names are lower case)", code))
		}
	case VirtUnikernel, VirtWasm:
		entries := strings.Split(code, ",")
		for i, e := range entries {
			if msg := checkURL(e); msg != "" {
				what := "entry " + strconv.Itoa(i+1)
				if len(entries) == 1 {
					what = "the code"
				}
				v.errs.add(field, fmt.Sprintf("%s (%q) %s", what, e, msg))
				return 0
			}
		}
		return len(entries)
	}
	return 0
}

// checkURL returns "" if s is an absolute http or https URL with a host, or
// else what is wrong with it.
func checkURL(s string) string {
	if s == "" {
		return "is empty: code lists image URLs separated by ','"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return "must be an http:// or https:// URL of the image"
	}
	return ""
}

// Archs lists the architectures a microservice's arch list may name.
func Archs() []string { return append([]string(nil), archs...) }

func isArch(a string) bool {
	for _, x := range archs {
		if a == x {
			return true
		}
	}
	return false
}

// checkEnv returns "" if e is a valid KEY=value entry, or else the problem.
func checkEnv(e string) string {
	key, _, ok := strings.Cut(e, "=")
	switch {
	case !ok:
		return fmt.Sprintf("%q must have the form KEY=value", e)
	case key == "":
		return fmt.Sprintf("%q has an empty variable name (want KEY=value)", e)
	case strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Sprintf("variable name %q must not contain whitespace or control characters", key)
	case strings.IndexByte(e, 0) >= 0:
		return "must not contain NUL characters"
	}
	return ""
}

// serviceIP checks a service IP and returns it, or the zero Addr if it is
// empty or invalid.
func (v *validator) serviceIP(field, s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Is4() {
		v.errs.add(field, fmt.Sprintf("%q is not an IPv4 address in %s", s, ServiceNetwork))
		return netip.Addr{}
	}
	if !ServiceNetwork.Contains(ip) {
		v.errs.add(field, fmt.Sprintf("%s is outside the service network %s", ip, ServiceNetwork))
		return netip.Addr{}
	}
	if ip == ServiceNetwork.Masked().Addr() {
		v.errs.add(field, fmt.Sprintf("%s is the network address of %s", ip, ServiceNetwork))
		return netip.Addr{}
	}
	if ip == broadcast(ServiceNetwork) {
		v.errs.add(field, fmt.Sprintf("%s is the broadcast address of %s", ip, ServiceNetwork))
		return netip.Addr{}
	}
	return ip
}

// recordIP notes a valid service IP, reporting it if it was used before in
// the same SLA.
func (v *validator) recordIP(field string, ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	if prev, dup := v.ips[ip]; dup {
		v.errs.add(field, fmt.Sprintf("%s is already used by %s", ip, prev))
		return
	}
	v.ips[ip] = field
}

// broadcast returns the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= host
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// constraint checks one placement constraint.
func (v *validator) constraint(path string, c *Constraint) {
	switch c.Type {
	case ConstraintDirect:
		switch {
		case c.Cluster == "":
			v.errs.add(join(path, "cluster"), "is required for a direct constraint")
		case !clusterNameRE.MatchString(c.Cluster):
			v.errs.add(join(path, "cluster"), fmt.Sprintf("%q is not a valid cluster name (1 to 64 of A-Z a-z 0-9 _ . -)", c.Cluster))
		}
		if c.Node != "" {
			for i, n := range strings.Split(c.Node, ";") {
				if !clusterNameRE.MatchString(n) {
					v.errs.add(join(path, "node"), fmt.Sprintf("node %d (%q) is not a valid node name: give node names (1 to 64 of A-Z a-z 0-9 _ . -) separated by ';'", i+1, n))
					break
				}
			}
		}
	case ConstraintClusters:
		if len(c.Allowed) == 0 {
			v.errs.add(join(path, "allowed"), "must list at least one cluster")
		}
		for i, n := range c.Allowed {
			if !clusterNameRE.MatchString(n) {
				v.errs.add(join(path, "allowed["+strconv.Itoa(i)+"]"), fmt.Sprintf("%q is not a valid cluster name (1 to 64 of A-Z a-z 0-9 _ . -)", n))
			}
		}
	case ConstraintLatency:
		v.threshold(path, c.Threshold, MaxLatencyMS, "ms")
		targets := 0
		if c.Area != "" {
			targets++
			v.site(join(path, "area"), c.Area)
		}
		if c.Node != "" {
			targets++
			if !clusterNameRE.MatchString(c.Node) {
				v.errs.add(join(path, "node"), fmt.Sprintf("%q is not a valid node name (1 to 64 of A-Z a-z 0-9 _ . -)", c.Node))
			}
		}
		if c.Service != "" {
			targets++
			if !NameRE.MatchString(c.Service) {
				v.errs.add(join(path, "service"), fmt.Sprintf("%q is not a microservice name (1 to 30 letters and digits)", c.Service))
			}
		}
		if c.Cluster != "" {
			if c.Node == "" {
				targets++
			}
			if !clusterNameRE.MatchString(c.Cluster) {
				v.errs.add(join(path, "cluster"), fmt.Sprintf("%q is not a valid cluster name (1 to 64 of A-Z a-z 0-9 _ . -)", c.Cluster))
			}
		}
		if targets != 1 {
			v.errs.add(path, "a latency constraint needs exactly one target: area (a site), node (with an optional cluster), cluster or service (of the same application)")
		}
		v.rigid(path, c)
	case ConstraintGeo:
		if c.Location == "" {
			v.errs.add(join(path, "location"), "is required for a geo constraint: \"lat,long\" or a site name")
		} else if l, err := geo.Parse(c.Location); err != nil {
			v.errs.add(join(path, "location"), err.Error())
		} else if l.HasPoint {
			v.threshold(path, c.Threshold, MaxGeoKm, "km")
		} else if c.Threshold < 0 {
			v.errs.add(join(path, "threshold"), "must not be negative")
		}
		v.rigid(path, c)
	case "":
		v.errs.add(join(path, "type"), "is required: direct, clusters, latency or geo")
	default:
		v.errs.add(join(path, "type"), fmt.Sprintf("%q is not a constraint type: use direct, clusters, latency or geo", c.Type))
	}
}

// Bounds of latency and geo constraints' thresholds.
const (
	MaxLatencyMS = 10000
	MaxGeoKm     = 20040 // half the Earth's circumference
)

// threshold checks a latency or geo constraint's threshold.
func (v *validator) threshold(path string, t, max float64, unit string) {
	if !(t > 0 && t <= max) {
		v.errs.add(join(path, "threshold"), fmt.Sprintf("must be a number of %s above 0 and at most %g", unit, max))
	}
}

// site checks a site name.
func (v *validator) site(path, s string) {
	if l, err := geo.Parse(s); err != nil || l.HasPoint {
		v.errs.add(path, fmt.Sprintf("%q is not a site name (a letter, then up to 63 of A-Z a-z 0-9 _ . -)", s))
	}
}

// rigid checks the reference's rigidness and convergence_time.
func (v *validator) rigid(path string, c *Constraint) {
	if c.Rigidness < 0 || c.Rigidness > 1 {
		v.errs.add(join(path, "rigidness"), "must be within 0..1")
	}
	if c.ConvergenceTime < 0 {
		v.errs.add(join(path, "convergence_time"), "must not be negative")
	}
}
