package sla

import (
	"strings"
	"testing"
)

func TestParsePeer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Peer
		err  string
	}{
		{in: "bob", want: Peer{User: "bob"}},
		{in: "bob.smith_1-x", want: Peer{User: "bob.smith_1-x"}},
		{in: "bob/shop", want: Peer{User: "bob", App: "shop"}},
		{in: "bob/shop/cart", want: Peer{User: "bob", App: "shop", Service: "cart"}},
		{in: "", err: "user"},
		{in: "bob/", err: "application"},
		{in: "bob//cart", err: "application"},
		{in: "bob/shop/", err: "service"},
		{in: "bob/sh-op", err: "application"},
		{in: "bob/shop/cart/x", err: "4 parts"},
		{in: "bo b", err: "user"},
	} {
		got, err := ParsePeer(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePeer(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePeer(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
}

func TestValidateAllowFrom(t *testing.T) {
	if errs := ValidateAllowFrom("x", []string{"a", "a/b", "a/b/c"}); errs != nil {
		t.Fatalf("valid list: %v", errs)
	}
	errs := ValidateAllowFrom("x", []string{"a", "a", "a/b-c"})
	if len(errs) != 2 || errs[0].Field != "x[1]" || !strings.Contains(errs[0].Message, "duplicate") || errs[1].Field != "x[2]" {
		t.Fatalf("errors: %v", errs)
	}
	long := make([]string, MaxAllowFrom+1)
	for i := range long {
		long[i] = "u" + strings.Repeat("x", i)
	}
	if errs := ValidateAllowFrom("x", long); len(errs) != 1 || !strings.Contains(errs[0].Message, "at most") {
		t.Fatalf("too long: %v", errs)
	}
}

// TestIsolationValidation: an application's isolation is user (the
// default) or application; anything else is refused at the field, and so
// is isolation on services added to an existing application.
func TestIsolationValidation(t *testing.T) {
	for _, tc := range []struct {
		isolation  string
		forService bool
		want       string // "" when valid
	}{
		{"", false, ""},
		{IsolationUser, false, ""},
		{IsolationApplication, false, ""},
		{"namespace", false, "is not a unit of isolation"},
		{"Application", false, "is not a unit of isolation"},
		{IsolationApplication, true, "when the application is created"},
		{"", true, ""},
	} {
		d := validSLA(t)
		d.Applications[0].Isolation = tc.isolation
		var err error
		if tc.forService {
			d.Applications[0].ApplicationID = "app1"
			err = d.ValidateServices()
		} else {
			err = d.Validate()
		}
		errs, _ := err.(Errors)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("isolation %q (services %v): refused: %v", tc.isolation, tc.forService, err)
		case tc.want != "" && (len(errs) != 1 || errs[0].Field != "applications[0].isolation" || !strings.Contains(errs[0].Message, tc.want)):
			t.Errorf("isolation %q (services %v): %v, want one error at applications[0].isolation containing %q", tc.isolation, tc.forService, err, tc.want)
		}
	}
}
