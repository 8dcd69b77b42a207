package sla

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Decode parses a JSON SLA.
//
// An empty body, invalid JSON, data after the JSON document, a document that
// is not an object, or a value of the wrong JSON type for its field (e.g.
// "memory": "100", "vcpus": 0.5, "cmd": "ls") is reported as Errors; type
// errors carry the full JSON path of the offending value, including array
// indexes ("applications[0].microservices[1].memory"). All type errors are
// reported, in field order.
//
// Unknown fields are ignored. Field names are matched exactly (unlike
// encoding/json, which also accepts other capitalisations). JSON null leaves
// a field at its zero value; in particular a null list is an empty list.
//
// Decode does not validate the content; call Validate or ValidateServices.
// Every list in the result is non-nil (absent and null lists become empty),
// so that an SLA re-encoded with encoding/json shows [] rather than null.
func Decode(data []byte) (*SLA, error) {
	var s SLA
	if err := decodeInto(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// decodeInto decodes data into the struct pointed to by v with the rules of
// Decode.
func decodeInto(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return Errors{{Message: syntaxMessage(data, err)}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errors{{Message: "invalid JSON: unexpected data after the top-level value"}}
	}
	if _, ok := raw.(map[string]any); !ok {
		return Errors{{Message: "the SLA must be a JSON object, got " + describe(raw)}}
	}
	rv := reflect.ValueOf(v).Elem()
	var errs Errors
	decodeValue(&errs, "", raw, rv)
	if len(errs) > 0 {
		return errs
	}
	normalize(rv)
	return nil
}

// syntaxMessage turns an error of json.Decoder.Decode into a message for the
// user, with a line and column where possible.
func syntaxMessage(data []byte, err error) string {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return "the request body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: unexpected end of input"
	case errors.As(err, &se):
		// Offset counts the bytes read up to and including the bad one.
		pos := se.Offset - 1
		pos = max(0, min(pos, int64(len(data))))
		before := data[:pos]
		line := bytes.Count(before, []byte{'\n'}) + 1
		col := len(before) - bytes.LastIndexByte(before, '\n')
		return fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, se.Error())
	default:
		return "invalid JSON: " + err.Error()
	}
}

// describe names the JSON type of a value produced by json.Decoder with
// UseNumber.
func describe(raw any) string {
	switch r := raw.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "the number " + string(r)
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", raw)
	}
}

// decodeValue stores the generic JSON value raw into v, reporting type
// mismatches under path. v must be settable. JSON null leaves v unchanged.
func decodeValue(errs *Errors, path string, raw any, v reflect.Value) {
	if raw == nil {
		return
	}
	switch v.Kind() {
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			errs.add(path, "must be a string, got "+describe(raw))
			return
		}
		v.SetString(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		num, ok := raw.(json.Number)
		if !ok {
			errs.add(path, "must be an integer, got "+describe(raw))
			return
		}
		n, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				errs.add(path, "integer "+string(num)+" is out of range")
			} else {
				errs.add(path, "must be an integer, got "+string(num))
			}
			return
		}
		if v.OverflowInt(n) {
			errs.add(path, "integer "+string(num)+" is out of range")
			return
		}
		v.SetInt(n)
	case reflect.Float64:
		// A number; also a string holding one, as some of the reference's
		// examples write thresholds ("threshold": "100").
		var text string
		switch x := raw.(type) {
		case json.Number:
			text = string(x)
		case string:
			text = strings.TrimSpace(x)
		default:
			errs.add(path, "must be a number, got "+describe(raw))
			return
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			errs.add(path, fmt.Sprintf("must be a number, got %q", text))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			errs.add(path, "must be true or false, got "+describe(raw))
			return
		}
		v.SetBool(b)
	case reflect.Slice:
		arr, ok := raw.([]any)
		if !ok {
			errs.add(path, "must be an array, got "+describe(raw))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(arr), len(arr))
		for i, e := range arr {
			decodeValue(errs, path+"["+strconv.Itoa(i)+"]", e, s.Index(i))
		}
		v.Set(s)
	case reflect.Pointer:
		// A pointer to a struct is an optional object; to anything else, an
		// optional value whose absence means its default.
		if _, ok := raw.(map[string]any); !ok && v.Type().Elem().Kind() == reflect.Struct {
			errs.add(path, "must be an object, got "+describe(raw))
			return
		}
		n := len(*errs)
		p := reflect.New(v.Type().Elem())
		decodeValue(errs, path, raw, p.Elem())
		if len(*errs) == n {
			v.Set(p)
		}
	case reflect.Struct:
		obj, ok := raw.(map[string]any)
		if !ok {
			errs.add(path, "must be an object, got "+describe(raw))
			return
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name := jsonName(t.Field(i))
			if name == "" {
				continue
			}
			if val, ok := obj[name]; ok {
				decodeValue(errs, join(path, name), val, v.Field(i))
			}
		}
	default:
		panic("sla: cannot decode into " + v.Type().String())
	}
}

// jsonName returns the JSON name of an exported struct field, or "" if the
// field is not part of the JSON form.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name
}

// normalize replaces every nil slice reachable from v by an empty one.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return
		}
		for i := 0; i < v.Len(); i++ {
			normalize(v.Index(i))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				normalize(v.Field(i))
			}
		}
	}
}
