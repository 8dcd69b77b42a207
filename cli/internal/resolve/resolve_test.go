package resolve

import (
	"errors"
	"testing"

	"github.com/thicket-edge/thicket/api"
)

func TestApp(t *testing.T) {
	apps := []api.Application{
		{ApplicationID: "a1", ApplicationName: "shop", ApplicationNamespace: "prod", UserID: "Admin"},
		{ApplicationID: "a2", ApplicationName: "blog", ApplicationNamespace: "prod", UserID: "Admin"},
		{ApplicationID: "a3", ApplicationName: "blog", ApplicationNamespace: "test", UserID: "bob"},
		{ApplicationID: "blog2", ApplicationName: "a1", ApplicationNamespace: "x", UserID: "bob"},
	}
	for _, tc := range []struct {
		ref, want string
		err       any
	}{
		{ref: "a1", want: "a1"},   // an id wins over another app's name
		{ref: "shop", want: "a1"}, // a unique name
		{ref: "a3", want: "a3"},
		{ref: "blog", err: &AmbiguousError{}},
		{ref: "nope", err: &NotFoundError{}},
		{ref: "", err: &NotFoundError{}},
	} {
		got, err := App(tc.ref, apps)
		if !matchErr(err, tc.err) {
			t.Errorf("App(%q): error %v, want %T", tc.ref, err, tc.err)
			continue
		}
		if err == nil && got.ApplicationID != tc.want {
			t.Errorf("App(%q) = %s, want %s", tc.ref, got.ApplicationID, tc.want)
		}
	}
	_, err := App("blog", apps)
	if want := `application name "blog" is ambiguous: a2 (prod/blog, Admin), a3 (test/blog, bob); use the id`; err.Error() != want {
		t.Errorf("ambiguous message:\n got %s\nwant %s", err, want)
	}
}

func TestService(t *testing.T) {
	svcs := []api.Service{
		{MicroserviceID: "s1", MicroserviceName: "web", AppName: "shop"},
		{MicroserviceID: "s2", MicroserviceName: "db", AppName: "shop"},
		{MicroserviceID: "s3", MicroserviceName: "web", AppName: "blog"},
		{MicroserviceID: "s4", MicroserviceName: "worker", AppName: "blog"},
	}
	for _, tc := range []struct {
		ref, want string
		err       any
	}{
		{ref: "s3", want: "s3"},
		{ref: "shop/web", want: "s1"},
		{ref: "blog/web", want: "s3"},
		{ref: "db", want: "s2"},
		{ref: "worker", want: "s4"},
		{ref: "web", err: &AmbiguousError{}},
		{ref: "shop/worker", err: &NotFoundError{}},
		{ref: "nope/web", err: &NotFoundError{}},
		{ref: "shop/", err: &NotFoundError{}},
	} {
		got, err := Service(tc.ref, svcs)
		if !matchErr(err, tc.err) {
			t.Errorf("Service(%q): error %v, want %T", tc.ref, err, tc.err)
			continue
		}
		if err == nil && got.MicroserviceID != tc.want {
			t.Errorf("Service(%q) = %s, want %s", tc.ref, got.MicroserviceID, tc.want)
		}
	}
}

func matchErr(err error, want any) bool {
	switch want.(type) {
	case nil:
		return err == nil
	case *AmbiguousError:
		var ae *AmbiguousError
		return errors.As(err, &ae)
	case *NotFoundError:
		var ne *NotFoundError
		return errors.As(err, &ne)
	}
	return false
}
