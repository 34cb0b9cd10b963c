package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"imageapid/estimators"
)

// processPath runs several services on one sample: POST a JSON sample with
// "services", or a multipart form with part "image" and field(s) "services"
// (repeated, or one comma-separated list). The services run in the order
// given on one decoded image and one face pass (estimators.RunAll), and the
// answer is the merged sample, each service's fields as its own route
// gives them.
const processPath = "/v1/process"

// maxServices bounds the services of one /v1/process request (a name may repeat).
const maxServices = 32

func (s *Server) serveProcess(w http.ResponseWriter, r *http.Request) {
	s.serveSample(w, r, func() (*estimators.Sample, func(context.Context, *estimators.Sample) error, error) {
		sample, services, err := s.processRequest(w, r)
		if err != nil {
			return nil, nil, err
		}
		return sample, func(ctx context.Context, sm *estimators.Sample) error {
			return estimators.RunAll(ctx, services, sm)
		}, nil
	})
}

// processRequest reads a /v1/process request: its sample and its services.
func (s *Server) processRequest(w http.ResponseWriter, r *http.Request) (*estimators.Sample, []estimators.Estimator, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && strings.HasPrefix(mt, "multipart/") {
		sample, values, err := s.formSample(w, r, "services")
		if err != nil {
			return nil, nil, err
		}
		var names []string
		for _, v := range values["services"] {
			for _, n := range strings.Split(v, ",") {
				if n = strings.TrimSpace(n); n != "" {
					names = append(names, n)
				}
			}
		}
		services, err := s.services(names, true)
		if err != nil {
			sample.Close()
			return nil, nil, err
		}
		return sample, services, nil
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, nil, err
	}
	top, err := parseTop(body)
	if err != nil {
		return nil, nil, err
	}
	raw, ok := top.Raw("services")
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil, missing("services")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, nil, invalid("value is not a valid list", "type_error.list", "services")
	}
	names := make([]string, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &names[i]); err != nil || bytes.HasPrefix(bytes.TrimSpace(it), []byte("null")) {
			return nil, nil, invalid("str type expected", "type_error.str", "services", i)
		}
	}
	services, err := s.services(names, false)
	if err != nil {
		return nil, nil, err
	}
	needsImage := false
	for _, e := range services {
		needsImage = needsImage || e.NeedsImage()
	}
	sample, err := s.topSample(top, needsImage, false, "services")
	if err != nil {
		return nil, nil, err
	}
	return sample, services, nil
}

// services looks the names up: 422 with one item per unknown name, for an
// empty list (a form without the field: field required) or for more than
// maxServices.
func (s *Server) services(names []string, form bool) ([]estimators.Estimator, error) {
	if len(names) == 0 {
		if form {
			return nil, missing("services")
		}
		return nil, invalid("ensure this value has at least 1 items", "value_error.list.min_items", "services")
	}
	if len(names) > maxServices {
		return nil, invalid(fmt.Sprintf("ensure this value has at most %d items", maxServices), "value_error.list.max_items", "services")
	}
	permitted := make([]string, len(s.order))
	for i, n := range s.order {
		permitted[i] = "'" + n + "'"
	}
	var (
		out []estimators.Estimator
		bad []fieldError
	)
	for i, n := range names {
		e, ok := s.estimators[n]
		if !ok {
			bad = append(bad, fieldError{
				Loc:  []any{"body", "services", i}, // a form's index is into its fields' names, in order
				Msg:  fmt.Sprintf("value is not a valid enumeration member; permitted: %s", strings.Join(permitted, ", ")),
				Type: "type_error.enum",
			})
			continue
		}
		out = append(out, e)
	}
	if len(bad) > 0 {
		return nil, &validationError{items: bad}
	}
	return out, nil
}
