// Package slatest holds shared SLA test fixtures: known-invalid SLAs with the
// JSON path of the first error each must produce, and one known-good SLA.
//
// It deliberately does not import package sla, so that the tests of package
// sla itself can use it.
package slatest

import (
	"bytes"
	_ "embed"
	"encoding/json"
)

//go:embed invalid.json
var invalidJSON []byte

//go:embed valid.json
var validJSON []byte

// Case is one invalid SLA.
type Case struct {
	// Name describes what is wrong.
	Name string `json:"name"`
	// Field is the JSON path of the first error reported for Body
	// (sla.Errors.First().Field), e.g. "applications[0].microservices[1].port";
	// "" when the body as a whole is rejected (not a JSON object).
	Field string `json:"field"`
	// Body is the document as posted to POST /api/application/.
	Body json.RawMessage `json:"sla"`
}

// Invalid returns the invalid SLAs of invalid.json. Every call returns fresh
// copies, so callers may modify them.
func Invalid() []Case {
	var cases []Case
	if err := json.Unmarshal(invalidJSON, &cases); err != nil {
		panic("slatest: invalid.json: " + err.Error())
	}
	for i := range cases {
		if len(cases[i].Body) == 0 {
			cases[i].Body = json.RawMessage("null")
		}
	}
	return cases
}

// Valid returns a known-good full SLA: one application "clientsrvr" in
// namespace "test" with two container microservices, "curl" and "nginx"
// (nginx has port "80:80/tcp" and rr_ip 10.30.55.55). Every call returns a
// fresh copy.
func Valid() json.RawMessage {
	return json.RawMessage(bytes.Clone(validJSON))
}
