package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime/multipart"
	"strings"
	"testing"

	"imageapid/estimators"
)

// clientError reports whether err is answered as a 4xx (not a 500).
func clientError(err error) bool {
	var (
		ve *validationError
		se *statusError
	)
	if errors.As(err, &ve) {
		return true
	}
	if errors.As(err, &se) {
		return se.status >= 400 && se.status < 500
	}
	_, ok := estimators.IsInputError(err)
	return ok
}

// FuzzSampleJSON parses arbitrary bodies as a JSON sample: refusals are
// 4xx, and an accepted sample keeps every key of every object it was given
// (the foreign keys of other services) through encoding.
func FuzzSampleJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"objects": []}`, `{"$image": null, "objects": null}`,
		`{"objects": [{"id": 2, "bbox": [0.1, 0.1, 0.4, 0.5], "face_id": "x", "attributes": {"age": 31}}, {"class": "face"}, {}]}`,
		`{"objects": [{"id": -1}]}`, `{"objects": [{"id": 1.5}]}`, `{"objects": [{"id": "7"}]}`, `{"objects": [1, 2]}`,
		`{"objects": {}}`, `{"$image": 12}`, `{"$image": "@@@"}`, `{"$image": "data:image/png;base64,iVBORw0KGgo="}`,
		`{"a": 1, "a": 2, "objects": [{"k": 1, "k": 2}]}`, `[]`, `"x"`, `{"$image": `, ` `, `{"objects": [` + strings.Repeat(`{"x":1},`, 101) + `{}]}`,
	} {
		f.Add([]byte(s))
	}
	s := &Server{cfg: Config{MaxObjects: 100, MaxPixels: 1 << 20}}
	f.Fuzz(func(t *testing.T, body []byte) {
		top, err := parseTop(body)
		if err != nil {
			if !clientError(err) {
				t.Fatalf("parseTop: %v is not a 4xx", err)
			}
			return
		}
		sample, err := s.topSample(top, false, false)
		if err != nil {
			if !clientError(err) {
				t.Fatalf("topSample: %v is not a 4xx", err)
			}
			return
		}
		defer sample.Close()
		if len(sample.Objects) > s.cfg.MaxObjects {
			t.Fatalf("%d objects past the limit", len(sample.Objects))
		}
		out, err := encodeSample(sample)
		if err != nil {
			t.Fatalf("encode an accepted sample: %v", err)
		}
		// A map, not a struct: encoding/json matches struct fields without
		// regard to case, and a foreign key "oBjeCts" would stand in for
		// "objects" (found by this target; kept as a seed).
		var top2 map[string]json.RawMessage
		var objs []map[string]json.RawMessage
		if err := json.Unmarshal(out, &top2); err != nil {
			t.Fatalf("the encoded sample is not an object: %v: %s", err, out)
		}
		if err := json.Unmarshal(top2["objects"], &objs); err != nil || len(objs) != len(sample.Objects) {
			t.Fatalf("the encoded objects do not read back: %v: %s", err, out)
		}
		for i, o := range sample.Objects {
			for _, k := range o.Keys() {
				if _, ok := objs[i][k]; !ok {
					t.Fatalf("object %d lost key %q", i, k)
				}
			}
		}
	})
}

// FuzzMultipart reads arbitrary bodies as an image form: no crash, text
// fields stay within their bound.
func FuzzMultipart(f *testing.F) {
	form := func(parts ...string) []byte {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.SetBoundary("fuzzboundary")
		for i := 0; i+1 < len(parts); i += 2 {
			if parts[i] == "image" {
				w, _ := mw.CreateFormFile("image", "a.jpg")
				w.Write([]byte(parts[i+1]))
			} else {
				mw.WriteField(parts[i], parts[i+1])
			}
		}
		mw.Close()
		return buf.Bytes()
	}
	f.Add(form("image", "\xff\xd8\xff\xe0 not really"), "fuzzboundary")
	f.Add(form("services", "face-detector", "image", "x", "services", "body-detector"), "fuzzboundary")
	f.Add(form("other", "y"), "fuzzboundary")
	f.Add(form("services", strings.Repeat("s", 20000), "image", "x"), "fuzzboundary")
	f.Add([]byte("--xyz\r\ngarbage"), "xyz")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc\r\n--b--\r\n"), "b")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		if boundary == "" || len(boundary) > 70 {
			return
		}
		for _, fields := range [][]string{nil, {"services"}} {
			_, values, err := formParts(multipart.NewReader(bytes.NewReader(body), boundary), "image", fields)
			if err != nil {
				continue
			}
			for _, vs := range values {
				for _, v := range vs {
					if len(v) > maxFieldBytes {
						t.Fatalf("a field of %d bytes passed the %d limit", len(v), maxFieldBytes)
					}
				}
			}
		}
	})
}

// FuzzBase64 checks the lenient decoder against the standard encoder: every
// encoding of data (padded, unpadded, wrapped, as a data: URL) decodes back
// to data, and arbitrary strings never crash it.
func FuzzBase64(f *testing.F) {
	f.Add([]byte{}, "")
	f.Add([]byte("\x00\xff\x10hello"), "aGVsbG8=")
	f.Add([]byte("ab"), "data:image/jpeg;base64,/9j/4AAQ")
	f.Add([]byte("abc"), "YW\nJj\r\n")
	f.Add([]byte("abcd"), "@@@not-base64@@@")
	f.Fuzz(func(t *testing.T, data []byte, s string) {
		decodeBase64(s)
		std := base64.StdEncoding.EncodeToString(data)
		wrapped := std
		if len(std) > 4 {
			wrapped = std[:4] + "\r\n" + std[4:]
		}
		for _, enc := range []string{std, base64.RawStdEncoding.EncodeToString(data), wrapped, "data:image/png;base64," + std} {
			got, err := decodeBase64(enc)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("decode(%q) = %q, %v; want %q", enc, got, err, data)
			}
		}
	})
}

// The $image fast path reads a literal without escapes as encoding/json
// would, and leaves the others (a "\/" some encoders write) to it.
func TestPlainStringAgreesWithJSON(t *testing.T) {
	for _, lit := range []string{`"aGVsbG8="`, ` "aGVsbG8=" `, `""`, `"aGV\/sbG8="`, `"a\u0041"`, `12`, `null`, `"`} {
		var want string
		jsonErr := json.Unmarshal([]byte(lit), &want)
		got, ok := plainString([]byte(lit))
		switch {
		case ok && (jsonErr != nil || got != want):
			t.Errorf("%s: fast path %q, encoding/json %q (%v)", lit, got, want, jsonErr)
		case !ok && jsonErr == nil && strings.HasPrefix(strings.TrimSpace(lit), `"`) && !strings.Contains(lit, `\`):
			t.Errorf("%s: a literal without escapes left to encoding/json", lit)
		}
	}
}
