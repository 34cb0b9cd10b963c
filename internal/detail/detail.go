// Package detail writes the daemon's error bodies, {"detail": "..."}, for
// the packages that serve their own routes (sessions, watchlists), and
// words JSON decoding errors for them without echoing the request body.
package detail

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Write answers with code and {"detail": msg}.
func Write(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"detail": msg})
}

// JSONProblem words a JSON decoding error without echoing the body.
func JSONProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s must be %s", te.Field, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "the body is not a JSON object"
}
