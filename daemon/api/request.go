package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"sort"
	"strings"

	"gocv.io/x/gocv"

	"imageapid/estimators"
)

// readBody reads the whole body within the configured limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, errBodyTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, &statusError{http.StatusBadRequest, "Could not read the request body: " + err.Error()}
	}
	return b, nil
}

// imageSample reads a multipart form with the file in part "image".
func (s *Server) imageSample(w http.ResponseWriter, r *http.Request) (*estimators.Sample, error) {
	sample, _, err := s.formSample(w, r)
	return sample, err
}

// formSample reads a multipart form within the body limit: the file in part
// "image", decoded, and the values of the named text fields (each at most
// maxFieldBytes), which may come before or after the file.
func (s *Server) formSample(w http.ResponseWriter, r *http.Request, fields ...string) (*estimators.Sample, map[string][]string, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, nil, errBodyTooLarge
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, nil, missing("image")
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	data, values, err := formParts(multipart.NewReader(body, params["boundary"]), "image", fields)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, nil, errBodyTooLarge
	case errors.Is(err, errNoPart):
		return nil, nil, missing("image")
	case err != nil:
		return nil, nil, &statusError{http.StatusBadRequest, "Malformed multipart body: " + err.Error()}
	}
	img, err := estimators.DecodeImage(data, s.cfg.MaxPixels)
	if err != nil {
		return nil, nil, err
	}
	return estimators.NewSample(data, img, nil), values, nil
}

// jsonSample reads a sample: {"$image": base64, "objects": [...], ...}.
func (s *Server) jsonSample(w http.ResponseWriter, r *http.Request, e estimators.Estimator) (*estimators.Sample, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	top, err := parseTop(body)
	if err != nil {
		return nil, err
	}
	// A service that needs the image decodes it when it first needs pixels:
	// with its faces and network outputs in the face cache, never.
	return s.topSample(top, e.NeedsImage(), e.NeedsImage())
}

// topSample builds a sample from a parsed JSON body: its "$image" (required
// when needsImage; checked now, decoded now unless lazy), its objects, and
// its other keys, except those in skip, as the sample's extras.
func (s *Server) topSample(top *estimators.Object, needsImage, lazy bool, skip ...string) (*estimators.Sample, error) {
	objects, err := s.parseObjects(top)
	if err != nil {
		return nil, err
	}
	var (
		encoded []byte
		img     gocv.Mat
	)
	raw, hasImage := top.Raw("$image")
	if hasImage && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		var b64 string
		if err := json.Unmarshal(raw, &b64); err != nil {
			return nil, invalid("str type expected", "type_error.str", "$image")
		}
		encoded, err = decodeBase64(b64)
		if err != nil {
			return nil, estimators.BadInput(estimators.MsgBadBase64)
		}
		if !lazy {
			if img, err = estimators.DecodeImage(encoded, s.cfg.MaxPixels); err != nil {
				return nil, err
			}
		}
	} else if needsImage {
		return nil, missing("$image")
	}
	sample := estimators.NewSample(encoded, img, objects)
	if lazy && encoded != nil {
		if sample, err = estimators.NewEncodedSample(encoded, s.cfg.MaxPixels, objects); err != nil {
			return nil, err
		}
	}
	for _, k := range top.Keys() {
		if k != "$image" && k != "objects" && !slices.Contains(skip, k) {
			v, _ := top.Raw(k)
			sample.Extra.SetRaw(k, v)
		}
	}
	return sample, nil
}

func parseTop(body []byte) (*estimators.Object, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, invalid("field required", "value_error.missing")
	}
	if !json.Valid(trimmed) {
		var pos any = 0
		var se *json.SyntaxError
		if err := json.Unmarshal(trimmed, new(any)); errors.As(err, &se) {
			pos = se.Offset
		}
		return nil, invalid("Invalid JSON: the body could not be parsed", "value_error.jsondecode", pos)
	}
	if trimmed[0] != '{' {
		return nil, invalid("value is not a valid dict", "type_error.dict")
	}
	top := estimators.NewObject()
	if err := top.UnmarshalJSON(trimmed); err != nil {
		return nil, invalid("value is not a valid dict", "type_error.dict")
	}
	return top, nil
}

// parseObjects validates "objects" and prepares it as the original does:
// empty objects are dropped, an object without "id" gets its list index, and
// objects are sorted by id.
func (s *Server) parseObjects(top *estimators.Object) ([]*estimators.Object, error) {
	raw, ok := top.Raw("objects")
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid("value is not a valid list", "type_error.list", "objects")
	}
	if len(items) > s.cfg.MaxObjects {
		return nil, estimators.BadInput("Too many objects: %d, the limit is %d", len(items), s.cfg.MaxObjects)
	}
	type keyed struct {
		id  int64
		obj *estimators.Object
	}
	var out []keyed
	for i, it := range items {
		t := bytes.TrimSpace(it)
		if len(t) == 0 || t[0] != '{' {
			return nil, invalid("value is not a valid dict", "type_error.dict", "objects", i)
		}
		o := estimators.NewObject()
		if err := o.UnmarshalJSON(t); err != nil {
			return nil, invalid("value is not a valid dict", "type_error.dict", "objects", i)
		}
		if o.Len() == 0 {
			continue
		}
		id := int64(i)
		if rawID, ok := o.Raw("id"); ok {
			if err := json.Unmarshal(rawID, &id); err != nil || id < 0 {
				return nil, invalid("value is not a valid non-negative integer", "type_error.integer", "objects", i, "id")
			}
		} else {
			o.Set("id", i)
		}
		out = append(out, keyed{id, o})
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].id < out[b].id })
	objs := make([]*estimators.Object, len(out))
	for i, k := range out {
		objs[i] = k.obj
	}
	return objs, nil
}

// decodeBase64 accepts standard base64 with or without padding, ignoring
// line breaks, and a data: URL prefix.
func decodeBase64(s string) ([]byte, error) {
	if strings.HasPrefix(s, "data:") {
		if i := strings.Index(s, ","); i >= 0 {
			s = s[i+1:]
		}
	}
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	return b, nil
}

var errNoPart = errors.New("no such form part")

// maxFieldBytes bounds one text field of a multipart form.
const maxFieldBytes = 16 << 10

// formParts returns the bytes of the first form part named file and the
// values of the text fields named in fields. Without fields it stops at the
// file; otherwise it reads the whole form.
func formParts(mr *multipart.Reader, file string, fields []string) ([]byte, map[string][]string, error) {
	var (
		data   []byte
		found  bool
		values map[string][]string
	)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			if !found {
				return nil, nil, errNoPart
			}
			return data, values, nil
		}
		if err != nil {
			return nil, nil, err
		}
		switch name := p.FormName(); {
		case name == file && !found:
			if data, err = io.ReadAll(p); err != nil {
				return nil, nil, err
			}
			found = true
			if len(fields) == 0 {
				return data, nil, nil
			}
		case slices.Contains(fields, name):
			v, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
			if err != nil {
				return nil, nil, err
			}
			if len(v) > maxFieldBytes {
				return nil, nil, fmt.Errorf("field %q is longer than %d bytes", name, maxFieldBytes)
			}
			if values == nil {
				values = map[string][]string{}
			}
			values[name] = append(values[name], string(v))
		default:
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, nil, err
			}
		}
	}
}
