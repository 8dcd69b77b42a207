package sla

import "fmt"

// Indexed one-shot services (a Thicket extension, after Kubernetes Indexed
// Jobs): a one_shot microservice with completions N has the instances
// 0..N-1, created with the service, each told its index
// (THICKET_INSTANCE_INDEX) and N (THICKET_COMPLETIONS). Each index is to
// end COMPLETED exactly once: its node retries a FAILED run, same index,
// with back-off, up to backoff_limit times; a COMPLETED index never runs
// again.
const (
	// MaxCompletions bounds completions: every index is an instance.
	MaxCompletions = 1000
	// DefaultBackoffLimit is how often a FAILED index is retried when the
	// SLA does not say (Kubernetes' default).
	DefaultBackoffLimit = 6
	// MaxBackoffLimit bounds backoff_limit.
	MaxBackoffLimit = 100
)

// Retries is how often a FAILED instance of the microservice is retried:
// backoff_limit, DefaultBackoffLimit when unset, 0 without completions.
func (m *Microservice) Retries() int {
	switch {
	case m.Completions <= 0:
		return 0
	case m.BackoffLimit != nil:
		return *m.BackoffLimit
	}
	return DefaultBackoffLimit
}

// completions checks completions and backoff_limit; f makes a field's
// path.
func (v *validator) completions(f func(string) string, m *Microservice) {
	if m.Completions != 0 {
		switch {
		case !m.OneShot:
			v.errs.add(f("completions"), "is only for one_shot services: a long-running service has no completions (set one_shot: true, or drop completions)")
		case m.Completions < 0 || m.Completions > MaxCompletions:
			v.errs.add(f("completions"), fmt.Sprintf("must be between 1 and %d", MaxCompletions))
		}
	}
	if b := m.BackoffLimit; b != nil {
		switch {
		case m.Completions == 0:
			v.errs.add(f("backoff_limit"), "is only for one_shot services with completions")
		case *b < 0 || *b > MaxBackoffLimit:
			v.errs.add(f("backoff_limit"), fmt.Sprintf("must be between 0 and %d retries", MaxBackoffLimit))
		}
	}
}
