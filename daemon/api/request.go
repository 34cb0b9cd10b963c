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
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators"
)

// readBody reads the whole body within the configured limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, refuseOversized(w, r)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if failure := readFailure(err); failure != nil {
			if failure == errBodyTooLarge {
				return nil, refuseOversized(w, r)
			}
			return nil, failure
		}
		return nil, errBodyRead
	}
	return b, nil
}

// readFailure maps an error met while reading a body to what the client is
// told, without the error's own text (which names addresses): over the
// limit is 400, a read that timed out or found the server's body budget
// full is a 503 (the server was busy, not the client wrong), a broken or
// short body is 400. Errors that are not read failures give nil.
func readFailure(err error) error {
	var (
		tooLarge *http.MaxBytesError
		netErr   net.Error
	)
	switch {
	case errors.As(err, &tooLarge):
		return errBodyTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return errBodyBusy
	case errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, http.ErrBodyReadAfterClose):
		return errBodyRead
	}
	return nil
}

// Over-limit bodies are read and thrown away, up to maxDrainBytes within
// drainTimeout, so that a client that sends a whole body without waiting
// for "100 Continue" reads its 400 instead of a connection reset.
const (
	maxDrainBytes = 32 << 20
	drainTimeout  = 10 * time.Second
)

// refuseOversized drains an over-limit body and closes the connection after
// the answer; a client that waits for "100 Continue" sent nothing to drain.
func refuseOversized(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Connection", "close")
	if !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(drainTimeout))
		io.CopyN(io.Discard, r.Body, maxDrainBytes)
	}
	return errBodyTooLarge
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
		return nil, nil, refuseOversized(w, r)
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, nil, missing("image")
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	data, values, err := formParts(multipart.NewReader(body, params["boundary"]), "image", fields)
	switch failure := readFailure(err); {
	case failure == errBodyTooLarge:
		return nil, nil, refuseOversized(w, r)
	case failure != nil:
		return nil, nil, failure
	case errors.Is(err, errNoPart):
		return nil, nil, missing("image")
	case err != nil:
		return nil, nil, &statusError{status: http.StatusBadRequest, detail: "Malformed multipart body: " + clip(err.Error(), 120)}
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
		b64, ok := plainString(raw)
		if !ok {
			if err := json.Unmarshal(raw, &b64); err != nil {
				return nil, invalid("str type expected", "type_error.str", "$image")
			}
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

// plainString returns the text of a JSON string literal without escapes
// (every base64 image), which is the literal's bytes themselves; raw has
// passed json.Valid. Strings with escapes are left to encoding/json.
func plainString(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// decodeBase64 accepts standard base64 with or without padding, ignoring
// line breaks, and a data: URL prefix.
func decodeBase64(s string) ([]byte, error) {
	if strings.HasPrefix(s, "data:") {
		if i := strings.Index(s, ","); i >= 0 {
			s = s[i+1:]
		}
	}
	if strings.ContainsAny(s, "\n\r \t") {
		s = strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, s)
	}
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

// clip shortens an error text that may quote the client's bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "?")
	}
	return strings.ToValidUTF8(s[:n], "?") + "..."
}

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
