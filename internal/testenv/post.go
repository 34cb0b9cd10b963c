package testenv

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"testing"
)

// PostImage posts a multipart form with the file in part "image" and the
// given fields, and returns the status and body.
func PostImage(t testing.TB, url string, image []byte, fields map[string]string) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("image", "image.jpg")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(image)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.Close()
	resp, err := http.Post(url, mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
