package sla

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of a microservice's job list (collaborative workloads).
const (
	// MaxJobs is the most jobs a service may have.
	MaxJobs = 10000
	// MaxJobName is the longest job name, in bytes.
	MaxJobName = 256
	// DefaultJobsLease is the lease of a service that gives no
	// jobs_lease_s: how long, in seconds, an instance cut off from its
	// cluster keeps its jobs before it gives them up on its own, and how
	// long the cluster waits before it grants them to another instance.
	DefaultJobsLease = 30
	// MinJobsLease and MaxJobsLease bound jobs_lease_s.
	MinJobsLease = 5
	MaxJobsLease = 3600
)

// ValidateJobs checks a job list: at most MaxJobs names, each non-empty,
// at most MaxJobName bytes of valid UTF-8 without control characters or
// ',' (the separator of THICKET_JOBS), and unique. path is the list's JSON
// path; the errors name the offending entry. It returns nil if the list is
// valid. The API's job endpoints use it too.
func ValidateJobs(path string, jobs []string) Errors {
	return validateList(path, jobs, MaxJobs, "job", "jobs", CheckJobName)
}

// validateList checks a list of unique strings at path: at most max
// entries (one, many: what they are called), each passing check (which
// returns "" or the problem). It returns nil if the list is valid.
func validateList(path string, list []string, max int, one, many string, check func(string) string) Errors {
	var errs Errors
	if len(list) > max {
		errs.add(path, fmt.Sprintf("has %d %s, at most %d are allowed", len(list), many, max))
		return errs
	}
	seen := make(map[string]int, len(list))
	for i, e := range list {
		field := path + "[" + strconv.Itoa(i) + "]"
		if msg := check(e); msg != "" {
			errs.add(field, msg)
			continue
		}
		if prev, dup := seen[e]; dup {
			errs.add(field, fmt.Sprintf("duplicate %s %q (already at index %d)", one, e, prev))
			continue
		}
		seen[e] = i
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// CheckJobName returns "" if name is a valid job name, or else the problem.
func CheckJobName(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > MaxJobName:
		return fmt.Sprintf("is %d bytes long, at most %d are allowed", len(name), MaxJobName)
	case !utf8.ValidString(name):
		return "must be valid UTF-8"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "must not contain control characters"
	case strings.ContainsRune(name, ','):
		return fmt.Sprintf("%q must not contain ',' (THICKET_JOBS separates jobs with it)", name)
	case strings.TrimSpace(name) != name:
		return fmt.Sprintf("%q must not begin or end with white space", name)
	}
	return ""
}

// checkJobsLease returns "" if a jobs_lease_s value is valid (0 means the
// default), or else the problem.
func checkJobsLease(s int) string {
	if s == 0 || (s >= MinJobsLease && s <= MaxJobsLease) {
		return ""
	}
	return fmt.Sprintf("must be between %d and %d seconds (or absent for %d), got %d", MinJobsLease, MaxJobsLease, DefaultJobsLease, s)
}

// Lease returns the microservice's jobs lease in seconds, the default
// filled in.
func (m *Microservice) Lease() int {
	if m.JobsLease == 0 {
		return DefaultJobsLease
	}
	return m.JobsLease
}
