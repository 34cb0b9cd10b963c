package api_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/gif"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"imageapid/internal/testenv"
)

// pngWithSize returns a PNG whose header claims w x h pixels (a decompression
// bomb as far as any decoder that trusts the header is concerned).
func pngWithSize(t *testing.T, w, h uint32) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// IHDR data starts at 16: width, height; its CRC covers type+data (bytes 12..29).
	binary.BigEndian.PutUint32(b[16:20], w)
	binary.BigEndian.PutUint32(b[20:24], h)
	binary.BigEndian.PutUint32(b[29:33], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func bmpWithSize(w, h int32) []byte {
	b := make([]byte, 54)
	copy(b, "BM")
	binary.LittleEndian.PutUint32(b[2:], 54)
	binary.LittleEndian.PutUint32(b[10:], 54)
	binary.LittleEndian.PutUint32(b[14:], 40)
	binary.LittleEndian.PutUint32(b[18:], uint32(w))
	binary.LittleEndian.PutUint32(b[22:], uint32(h))
	binary.LittleEndian.PutUint16(b[26:], 1)
	binary.LittleEndian.PutUint16(b[28:], 24)
	return b
}

// chunked hides the length so the server cannot trust Content-Length.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestBadInputs(t *testing.T) {
	url := newServer(t)
	sample := url + fitter + "/process/sample"
	imageRoute := url + fitter + "/process/image"
	face1 := testenv.ReadFixture(t, "astronaut.png")
	jpg := jpegOf(t, face1, nil)
	var gifBuf bytes.Buffer
	gif.Encode(&gifBuf, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	manyObjects := make([]map[string]any, 101)
	for i := range manyObjects {
		manyObjects[i] = map[string]any{"class": "face"}
	}
	unsupported := "This image format is not supported"

	type request func() response
	raw := func(body string) request {
		return func() response {
			return do(t, http.MethodPost, sample, "application/json", strings.NewReader(body))
		}
	}
	js := func(v any) request { return func() response { return postJSON(t, sample, v) } }
	img := func(b []byte) request { return func() response { return postImage(t, imageRoute, b) } }

	cases := []struct {
		name   string
		req    request
		status int
		detail string // exact string detail; "" for a 422 list
		field  any    // last loc item of a 422: a name or a list index
	}{
		{"empty body", raw(""), 422, "", nil},
		{"malformed JSON", raw(`{"$image": `), 422, "", nil},
		{"JSON array body", raw(`[]`), 422, "", nil},
		{"JSON string body", raw(`"hello"`), 422, "", nil},
		{"missing $image", js(map[string]any{"objects": []any{}}), 422, "", "$image"},
		{"$image null", raw(`{"$image": null}`), 422, "", "$image"},
		{"$image a number", raw(`{"$image": 123}`), 422, "", "$image"},
		{"$image an object", raw(`{"$image": {"blob": "x"}}`), 422, "", "$image"},
		{"bad base64", js(map[string]any{"$image": "@@@not-base64@@@"}), 400, "Failed to decode base64 string", nil},
		{"empty $image", js(map[string]any{"$image": ""}), 400, unsupported, nil},
		{"random bytes", js(map[string]any{"$image": b64(bytes.Repeat([]byte{7, 1, 9}, 500))}), 400, unsupported, nil},
		{"GIF image", js(map[string]any{"$image": b64(gifBuf.Bytes())}), 400, unsupported, nil},
		{"truncated JPEG", js(map[string]any{"$image": b64(jpg[:len(jpg)/2])}), 400, unsupported + ": the jpeg file is truncated", nil},
		{"truncated PNG", js(map[string]any{"$image": b64(face1[:len(face1)/2])}), 400, unsupported + ": the png file is truncated", nil},
		{"JPEG header only", js(map[string]any{"$image": b64(jpg[:200])}), 400, unsupported + ": the jpeg file is truncated", nil},
		{"PNG bomb dimensions", js(map[string]any{"$image": b64(pngWithSize(t, 100000, 100000))}), 400,
			"Image is too large: 100000x100000 pixels is more than the limit of 10.0 megapixels", nil},
		{"BMP bomb dimensions", js(map[string]any{"$image": b64(bmpWithSize(60000, -60000))}), 400,
			"Image is too large: 60000x60000 pixels is more than the limit of 10.0 megapixels", nil},
		{"BMP with no pixels", js(map[string]any{"$image": b64(bmpWithSize(4, 4))}), 400, unsupported, nil},
		// Found by FuzzDecodeImage: a start-of-scan segment longer than the
		// file made the truncation check slice past the end (a panic, 500).
		{"JPEG scan header past the end", js(map[string]any{"$image": b64([]byte(
			"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10\x03\x01\x11\x00\x02\x11\x01\x03\x11\x01\xff\xda\x30\x30"))}),
			400, unsupported + ": the jpeg file is truncated", nil},
		{"objects not a list", js(map[string]any{"$image": b64(jpg), "objects": map[string]any{}}), 422, "", "objects"},
		{"objects of numbers", js(map[string]any{"$image": b64(jpg), "objects": []any{1, 2}}), 422, "", 0},
		{"object id not an integer", js(map[string]any{"$image": b64(jpg), "objects": []any{map[string]any{"id": "abc"}}}), 422, "", "id"},
		{"huge objects array", js(map[string]any{"$image": b64(jpg), "objects": manyObjects}), 400, "Too many objects: 101, the limit is 100", nil},
		{"body over the limit, chunked", func() response {
			body := `{"$image":"` + strings.Repeat("A", 5_000_000) + `"}`
			return do(t, http.MethodPost, sample, "application/json", chunked{strings.NewReader(body)})
		}, 400, "Request body size is too large", nil},
		{"image route, JSON body", func() response {
			return do(t, http.MethodPost, imageRoute, "application/json", strings.NewReader(`{"$image":"x"}`))
		}, 422, "", "image"},
		{"image route, no content type", func() response {
			return do(t, http.MethodPost, imageRoute, "", bytes.NewReader(jpg))
		}, 422, "", "image"},
		{"image route, random bytes", img(bytes.Repeat([]byte{1, 2, 3}, 100)), 400, unsupported, nil},
		{"image route, empty file", img(nil), 400, unsupported, nil},
		{"image route, malformed multipart", func() response {
			return do(t, http.MethodPost, imageRoute, "multipart/form-data; boundary=xyz", strings.NewReader("--xyz\r\ngarbage"))
		}, 400, "", nil},
		{"unknown service", func() response {
			return do(t, http.MethodPost, url+"/no-such-service/process/sample", "application/json", strings.NewReader("{}"))
		}, 404, "Not Found", nil},
		{"PUT on sample", func() response {
			return do(t, http.MethodPut, sample, "application/json", strings.NewReader("{}"))
		}, 405, "Method Not Allowed", nil},
	}
	if len(cases) < 20 {
		t.Fatalf("the table must hold at least 20 bad inputs")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.req()
			switch {
			case c.status == 422:
				field, _ := c.field.(string)
				if idx, ok := c.field.(int); ok {
					assertValidationIndex(t, r, idx)
					return
				}
				assertValidation(t, r, field)
			case c.detail == "":
				if r.Status != c.status {
					t.Errorf("status %d, want %d: %.200s", r.Status, c.status, r.Body)
				}
				if _, ok := r.JSON(t)["detail"].(string); !ok {
					t.Errorf("detail is not a string: %.200s", r.Body)
				}
			default:
				assertDetail(t, r, c.status, c.detail)
			}
		})
	}
	// The server still answers after all of that.
	if r := postImage(t, imageRoute, face1); r.Status != 200 {
		t.Fatalf("after bad inputs the fitter answers %d", r.Status)
	}
}
