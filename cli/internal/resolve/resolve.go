// Package resolve finds the application or service a user names on the
// command line: by id, or by name where the name is unambiguous
// (an application's name; a service's "app/service" or bare name).
package resolve

import (
	"fmt"
	"sort"
	"strings"

	"github.com/thicket-edge/thicket/api"
)

// NotFoundError is a reference that matches nothing.
type NotFoundError struct {
	Kind, Ref string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no %s %q (thicket get %ss lists them)", e.Kind, e.Ref, e.Kind)
}

// AmbiguousError is a name that several objects have.
type AmbiguousError struct {
	Kind, Ref string
	// Candidates are "id (name)" of each match, sorted.
	Candidates []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%s name %q is ambiguous: %s; use the id", e.Kind, e.Ref, strings.Join(e.Candidates, ", "))
}

// App finds an application by id, else by unique name.
func App(ref string, apps []api.Application) (api.Application, error) {
	var byName []api.Application
	for _, a := range apps {
		if a.ApplicationID == ref {
			return a, nil
		}
		if a.ApplicationName == ref {
			byName = append(byName, a)
		}
	}
	return pick("application", ref, byName, func(a api.Application) string {
		return a.ApplicationID + " (" + a.ApplicationNamespace + "/" + a.ApplicationName + ", " + a.UserID + ")"
	})
}

// Service finds a service by id, else by "app/service" or by a service
// name that only one service has.
func Service(ref string, svcs []api.Service) (api.Service, error) {
	app, name, qualified := strings.Cut(ref, "/")
	if !qualified {
		name = ref
	}
	var byName []api.Service
	for _, s := range svcs {
		if s.MicroserviceID == ref {
			return s, nil
		}
		if s.MicroserviceName == name && (!qualified || s.AppName == app) {
			byName = append(byName, s)
		}
	}
	return pick("service", ref, byName, func(s api.Service) string {
		return s.MicroserviceID + " (" + Label(s) + ")"
	})
}

// Label names a service for people: "app/service".
func Label(s api.Service) string { return s.AppName + "/" + s.MicroserviceName }

func pick[T any](kind, ref string, matches []T, describe func(T) string) (T, error) {
	var zero T
	switch len(matches) {
	case 0:
		return zero, &NotFoundError{Kind: kind, Ref: ref}
	case 1:
		return matches[0], nil
	}
	c := make([]string, len(matches))
	for i, m := range matches {
		c[i] = describe(m)
	}
	sort.Strings(c)
	return zero, &AmbiguousError{Kind: kind, Ref: ref, Candidates: c}
}
