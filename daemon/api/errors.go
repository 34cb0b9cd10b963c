package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"imageapid/estimators"
)

// Error bodies follow the original server (FastAPI): {"detail": "<text>"} for
// processing errors and {"detail": [{"loc", "msg", "type"}]} for validation.

// fieldError is one item of a FastAPI-style validation error list.
type fieldError struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

// validationError is a request that does not fit the schema: 422.
type validationError struct{ items []fieldError }

func (v *validationError) Error() string { return v.items[0].Msg }

func invalid(msg, typ string, loc ...any) error {
	return &validationError{items: []fieldError{{Loc: append([]any{"body"}, loc...), Msg: msg, Type: typ}}}
}

func missing(field string) error { return invalid("field required", "value_error.missing", field) }

// statusError is an error with a fixed status and detail string.
type statusError struct {
	status int
	detail string
	// retryAfter, when set, is sent as Retry-After (seconds).
	retryAfter string
}

func (s *statusError) Error() string { return s.detail }

var (
	errNotFound     = &statusError{status: http.StatusNotFound, detail: "Not Found"}
	errMethod       = &statusError{status: http.StatusMethodNotAllowed, detail: "Method Not Allowed"}
	errBodyTooLarge = &statusError{status: http.StatusBadRequest, detail: "Request body size is too large"}
	errBusy         = &statusError{status: http.StatusServiceUnavailable, detail: "Server busy: too many requests in progress, try again", retryAfter: "1"}
	errQueueFull    = &statusError{status: http.StatusServiceUnavailable, detail: "Server busy: every processing slot is taken and the wait queue is full, try again shortly", retryAfter: "1"}
	errQueueTimeout = &statusError{status: http.StatusServiceUnavailable, detail: "Server busy: no processing slot freed up in time, try again shortly", retryAfter: "2"}
	errBodyBusy     = &statusError{status: http.StatusServiceUnavailable, detail: "Server busy: the request body could not be read in time, try again shortly", retryAfter: "2"}
	errBodyRead     = &statusError{status: http.StatusBadRequest, detail: "Could not read the request body: the connection failed or the body ended early"}
	errTimeout      = &statusError{status: http.StatusServiceUnavailable, detail: "Processing timed out"}
	errInternal     = &statusError{status: http.StatusInternalServerError, detail: "Internal error while processing the request"}
	errShuttingDown = &statusError{status: http.StatusServiceUnavailable, detail: "Server is shutting down"}
)

// writeError maps an error to its status and body in one place.
func writeError(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error) {
	var (
		ve *validationError
		se *statusError
	)
	switch {
	case errors.As(err, &ve):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": ve.items})
	case errors.As(err, &se):
		if se == errMethod {
			w.Header().Set("Allow", http.MethodPost)
		}
		if se.retryAfter != "" {
			w.Header().Set("Retry-After", se.retryAfter)
		}
		writeJSON(w, se.status, map[string]string{"detail": se.detail})
	default:
		if msg, ok := estimators.IsInputError(err); ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"detail": msg})
			return
		}
		if errors.Is(err, context.DeadlineExceeded) {
			writeError(w, log, r, errTimeout)
			return
		}
		if errors.Is(err, context.Canceled) {
			writeError(w, log, r, errShuttingDown)
			return
		}
		log.Error("request failed", "path", r.URL.Path, "err", err)
		writeError(w, log, r, errInternal)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"detail":"Internal error while encoding the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
