package sla

import "strings"

// FieldError is one problem found in an SLA. Field is the JSON path of the
// offending value, e.g. "applications[0].microservices[1].port"; it is empty
// when the problem concerns the document as a whole (e.g. invalid JSON).
type FieldError struct {
	Field   string
	Message string
}

// Error returns "field: message", or just the message when Field is empty.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Errors is the list of problems found in an SLA, in document order.
type Errors []*FieldError

// Error joins all errors with "; ".
func (e Errors) Error() string {
	var b strings.Builder
	for i, fe := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// First returns the first error, or nil if there is none.
func (e Errors) First() *FieldError {
	if len(e) == 0 {
		return nil
	}
	return e[0]
}

// add appends an error for field.
func (e *Errors) add(field, msg string) {
	*e = append(*e, &FieldError{Field: field, Message: msg})
}

// asError returns e as an error, or a nil error if e is empty (so that callers
// never see a non-nil error interface holding an empty list).
func (e Errors) asError() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// join builds a JSON path from a prefix and a field name.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
