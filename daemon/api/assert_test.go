package api_test

import (
	"encoding/json"
	"reflect"
	"testing"
)

// assertDetail checks a status and an exact string detail.
func assertDetail(t *testing.T, r response, status int, detail string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %d, want %d: %.300s", r.Status, status, r.Body)
		return
	}
	var v struct {
		Detail any `json:"detail"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Errorf("body is not JSON: %.300s", r.Body)
		return
	}
	if s, ok := v.Detail.(string); !ok || s != detail {
		t.Errorf("detail %#v, want %q", v.Detail, detail)
	}
}

// assertValidation checks a 422 whose list detail's first item has loc
// ending with field, msg and type.
func assertValidation(t *testing.T, r response, field string) {
	t.Helper()
	if r.Status != 422 {
		t.Errorf("status %d, want 422: %.300s", r.Status, r.Body)
		return
	}
	var v struct {
		Detail []struct {
			Loc  []any  `json:"loc"`
			Msg  string `json:"msg"`
			Type string `json:"type"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil || len(v.Detail) == 0 {
		t.Errorf("422 detail is not a non-empty list: %.300s", r.Body)
		return
	}
	d := v.Detail[0]
	if d.Msg == "" || d.Type == "" || len(d.Loc) == 0 {
		t.Errorf("422 item lacks loc/msg/type: %+v", d)
	}
	if field != "" && (len(d.Loc) == 0 || d.Loc[len(d.Loc)-1] != field) {
		t.Errorf("422 loc %v does not end with %q", d.Loc, field)
	}
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var x, y any
	json.Unmarshal(ja, &x)
	json.Unmarshal(jb, &y)
	return reflect.DeepEqual(x, y)
}

// assertValidationIndex checks a 422 whose first loc ends with a list index.
func assertValidationIndex(t *testing.T, r response, idx int) {
	t.Helper()
	assertValidation(t, r, "")
	var v struct {
		Detail []struct {
			Loc []any `json:"loc"`
		} `json:"detail"`
	}
	json.Unmarshal(r.Body, &v)
	if len(v.Detail) == 0 || len(v.Detail[0].Loc) == 0 || v.Detail[0].Loc[len(v.Detail[0].Loc)-1] != float64(idx) {
		t.Errorf("422 loc does not end with index %d: %.200s", idx, r.Body)
	}
}
