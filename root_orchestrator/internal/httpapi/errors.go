package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// Error is an error answered to the client with a status and, for input
// errors, the JSON path of the field at fault.
type Error struct {
	Status  int
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Message }

func errBadRequest(msg, field string) *Error {
	return &Error{Status: http.StatusBadRequest, Message: msg, Field: field}
}

// tooLarge reports whether a body read failed on the body size limit.
func tooLarge(err error) bool {
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe) || (errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge)
}

var (
	errTooLarge     = &Error{Status: http.StatusRequestEntityTooLarge, Message: "request body larger than " + maxBody}
	errNotFound     = &Error{Status: http.StatusNotFound, Message: "not found"}
	errUnauthorized = &Error{Status: http.StatusUnauthorized, Message: "missing, invalid or expired token"}
	errForbidden    = &Error{Status: http.StatusForbidden, Message: "not allowed for your role"}
)

// errorHandler turns every error a handler returns into the JSON error body.
// Store errors map to 404/409; anything unexpected is a 500 that is logged
// and not described to the client.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
			return // the client went away (a cluster's watch when it stops)
		}
		status, body := classify(err)
		if status >= 500 {
			log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, body)
	}
}

func classify(err error) (int, api.Error) {
	var (
		ae  *Error
		he  *echo.HTTPError
		ce  *store.ConflictError
		fe  sla.Errors
		fe1 *sla.FieldError
	)
	switch {
	case errors.As(err, &ae):
		return ae.Status, api.Error{Error: ae.Message, Field: ae.Field}
	case errors.As(err, &fe) && len(fe) > 0:
		return http.StatusBadRequest, api.Error{Error: fe.Error(), Field: fe.First().Field}
	case errors.As(err, &fe1):
		return http.StatusBadRequest, api.Error{Error: fe1.Error(), Field: fe1.Field}
	case errors.As(err, &ce):
		return http.StatusConflict, api.Error{Error: ce.Error(), Field: ce.Field}
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, api.Error{Error: "not found"}
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok {
			msg = s
		}
		return he.Code, api.Error{Error: msg}
	}
	return http.StatusInternalServerError, api.Error{Error: "internal error"}
}

// decodeJSON reads a JSON request body into v, strictly typed; an empty or
// malformed body is a 400 naming the field when the decoder can.
func decodeJSON(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return errBadRequest("request body is empty", "")
		case errors.As(err, &te):
			return errBadRequest(te.Field+": must be "+te.Type.String(), te.Field)
		case tooLarge(err):
			return errTooLarge
		default:
			return errBadRequest("malformed JSON: "+err.Error(), "")
		}
	}
	return nil
}
