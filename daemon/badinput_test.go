package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"imageapid/internal/testenv"
	"imageapid/sessions"
)

// TestBadInputsWithAuth is the daemon-level half of the bad-input table
// (daemon/api's TestBadInputs holds the Image API's 30): access control,
// kiosk sessions, /v1/process, watchlists, camera previews and the raw-TCP
// over-limit body, with tokens on. Every answer is a 4xx with {"detail"}, and the daemon keeps serving.
func TestBadInputsWithAuth(t *testing.T) {
	const apiToken, adminToken = "bad-input-api-0123456789", "bad-input-admin-0123456789"
	addr, stop := startDaemonWithTokens(t, apiToken, adminToken)
	defer stop()
	base := "http://" + addr
	face1 := testenv.ReadFixture(t, "astronaut.png")
	sampleBody, _ := json.Marshal(map[string]any{"$image": face1})

	type req struct {
		method, path, auth, ctype string
		body                      []byte
	}
	send := func(r req) (int, []byte, http.Header) {
		hr, err := http.NewRequest(r.method, base+r.path, bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if r.auth != "" {
			hr.Header.Set("Authorization", r.auth)
		}
		if r.ctype != "" {
			hr.Header.Set("Content-Type", r.ctype)
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header
	}
	bearer := func(tok string) string { return "Bearer " + tok }
	api, admin := bearer(apiToken), bearer(adminToken)

	newSession := func() (id, token string) {
		st, b, _ := send(req{"POST", sessions.Prefix, api, "application/json", []byte(`{"challenges": ["blink"]}`)})
		var c struct{ ID, Token string }
		json.Unmarshal(b, &c)
		if st != 201 || c.Token == "" {
			t.Fatalf("create a session: %d %s", st, b)
		}
		return c.ID, c.Token
	}
	id1, tok1 := newSession()
	id2, _ := newSession()
	frames := sessions.Prefix + "/" + id1 + "/frames"
	form := func(fields map[string]string, image []byte) (string, []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, v := range fields {
			mw.WriteField(k, v)
		}
		if image != nil {
			w, _ := mw.CreateFormFile("image", "f.jpg")
			w.Write(image)
		}
		mw.Close()
		return mw.FormDataContentType(), buf.Bytes()
	}
	noImageCT, noImage := form(map[string]string{"t_ms": "5"}, nil)
	badTCT, badT := form(map[string]string{"t_ms": "yesterday"}, face1)
	bigCT, big := form(nil, bytes.Repeat([]byte{0xff}, 3<<20))
	forged := strings.Replace(tok1, id1, id2, 1)

	cases := []struct {
		name   string
		r      req
		status int
	}{
		// Access control.
		{"no credentials", req{"POST", "/face-detector-face-fitter/process/sample", "", "application/json", sampleBody}, 401},
		{"basic auth", req{"POST", "/face-detector-face-fitter/process/sample", "Basic dXNlcjpwYXNz", "application/json", sampleBody}, 401},
		{"empty bearer", req{"POST", "/face-detector-face-fitter/process/sample", "Bearer ", "application/json", sampleBody}, 401},
		{"wrong token", req{"POST", "/face-detector-face-fitter/process/sample", bearer("nope-0123456789abcdef"), "application/json", sampleBody}, 401},
		{"token with a suffix", req{"POST", "/face-detector-face-fitter/process/sample", bearer(apiToken + "x"), "application/json", sampleBody}, 401},
		{"token prefix", req{"POST", "/face-detector-face-fitter/process/sample", bearer(apiToken[:10]), "application/json", sampleBody}, 401},
		{"api token on the console", req{"GET", "/", api, "", nil}, 403},
		{"api token on the event stream", req{"GET", "/v1/events/stream", api, "", nil}, 403},
		{"api token on /v1/system", req{"GET", "/v1/system", api, "", nil}, 403},
		{"api token on a watchlist search", req{"POST", "/v1/watchlists/door/search", api, "application/json", sampleBody}, 403},
		{"api token on /metrics", req{"GET", "/metrics", api, "", nil}, 403},
		{"api token on a camera stream", req{"GET", "/v1/cameras/door/stream", api, "", nil}, 403},
		{"api token on a route not in the table", req{"GET", "/v1/watchlists", api, "", nil}, 403},
		{"api token through dot segments", req{"GET", "/v1/process/../../cameras", api, "", nil}, 403},
		{"query token on a POST", req{"POST", "/face-detector-face-fitter/process/sample?token=" + apiToken, "", "application/json", sampleBody}, 401},
		{"forged session token", req{"GET", sessions.Prefix + "/" + id2, bearer(forged), "", nil}, 401},
		{"session token on another session", req{"GET", sessions.Prefix + "/" + id2, bearer(tok1), "", nil}, 403},
		{"session token creating a session", req{"POST", sessions.Prefix, bearer(tok1), "application/json", []byte(`{}`)}, 403},
		{"session token on the Image API", req{"POST", "/face-detector-face-fitter/process/sample", bearer(tok1), "application/json", sampleBody}, 403},
		// Kiosk sessions.
		{"session: malformed JSON", req{"POST", sessions.Prefix, api, "application/json", []byte(`{"challenges": [`)}, 400},
		{"session: unknown field", req{"POST", sessions.Prefix, api, "application/json", []byte(`{"challenge": ["blink"]}`)}, 400},
		{"session: unknown challenge", req{"POST", sessions.Prefix, api, "application/json", []byte(`{"challenges": ["dance"]}`)}, 400},
		{"session: negative timeout", req{"POST", sessions.Prefix, api, "application/json", []byte(`{"timeout_s": -1}`)}, 400},
		{"session: seven challenges", req{"POST", sessions.Prefix, api, "application/json",
			[]byte(`{"challenges": ["blink","smile","turn_left","turn_right","look_up","look_down","blink"]}`)}, 400},
		{"session: unknown source", req{"POST", sessions.Prefix, api, "application/json", []byte(`{"source": "elsewhere"}`)}, 400},
		{"session: unknown id", req{"GET", sessions.Prefix + "/no-such-session", api, "", nil}, 404},
		{"session: frame to an unknown id", req{"POST", sessions.Prefix + "/no-such-session/frames", api, noImageCT, noImage}, 404},
		{"session: frame form without an image", req{"POST", frames, bearer(tok1), noImageCT, noImage}, 400},
		{"session: frame with a bad t_ms", req{"POST", frames, bearer(tok1), badTCT, badT}, 400},
		{"session: frame JSON with bad base64", req{"POST", frames, bearer(tok1), "application/json", []byte(`{"$image": "@@@"}`)}, 400},
		{"session: frame that is not an image", req{"POST", frames, bearer(tok1), "application/json",
			[]byte(`{"$image": "` + base64.StdEncoding.EncodeToString([]byte("plain text")) + `"}`)}, 400},
		{"session: frame over the limit", req{"POST", frames, bearer(tok1), bigCT, big}, 413},
		{"session: PUT", req{"PUT", sessions.Prefix + "/" + id1, bearer(tok1), "", nil}, 405},
		{"session: unknown sub-route", req{"GET", sessions.Prefix + "/" + id1 + "/secrets", bearer(tok1), "", nil}, 404},
		// Several services on one image.
		{"/v1/process: unknown service", req{"POST", "/v1/process", api, "application/json",
			[]byte(`{"services": ["no-such-service"], "$image": null}`)}, 422},
		{"/v1/process: no services", req{"POST", "/v1/process", api, "application/json", []byte(`{"services": []}`)}, 422},
		{"/v1/process: GET", req{"GET", "/v1/process", api, "", nil}, 405},
		// Watchlists (admin).
		{"watchlist: malformed JSON person", req{"POST", "/v1/watchlists/door/persons", admin, "application/json", []byte(`{"name": `)}, 400},
		{"watchlist: person without a name", req{"POST", "/v1/watchlists/door/persons", admin, "application/json", []byte(`{}`)}, 400},
		{"watchlist: fa_r out of range", req{"PATCH", "/v1/watchlists/door", admin, "application/json", []byte(`{"fa_r": 2}`)}, 400},
		{"watchlist: unknown person", req{"GET", "/v1/watchlists/door/persons/no-such-person", admin, "", nil}, 404},
		{"watchlist: search with bad base64", req{"POST", "/v1/watchlists/door/search", admin, "application/json", []byte(`{"$image": "@@@"}`)}, 400},
		{"watchlist: DELETE on the lists", req{"DELETE", "/v1/watchlists", admin, "", nil}, 405},
		{"watchlist: unknown sub-route", req{"GET", "/v1/watchlists/door/secrets", admin, "", nil}, 404},
		// Camera previews (admin).
		{"preview of an unknown camera", req{"GET", "/v1/cameras/no-such-camera/snapshot.jpg", admin, "", nil}, 404},
		{"unknown route with the admin token", req{"GET", "/no/such/route", bearer(adminToken), "", nil}, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, b, h := send(c.r)
			if st != c.status {
				t.Errorf("%d, want %d: %.300s", st, c.status, b)
			}
			var body map[string]any
			if err := json.Unmarshal(b, &body); err != nil || body["detail"] == nil {
				t.Errorf("the answer is not {\"detail\"}: %.300s", b)
			}
			if (st == 401 || st == 403) && h.Get("WWW-Authenticate") == "" {
				t.Errorf("a %d without WWW-Authenticate", st)
			}
		})
	}
	overLimit := func(path, auth string, status int, detail string) func(t *testing.T) {
		return func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			const size = 12 << 20
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"+
				"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, auth, size)
			chunk := make([]byte, 64<<10)
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := conn.Write(chunk); err != nil {
					t.Fatalf("the daemon reset the connection while the body was sent: %v", err)
				}
				time.Sleep(2 * time.Millisecond)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != status || !bytes.Contains(b, []byte(detail)) {
				t.Errorf("%d %s", resp.StatusCode, b)
			}
		}
	}
	t.Run("over-limit body sent whole", overLimit("/face-detector-face-fitter/process/sample", api, 400, "Request body size is too large"))
	t.Run("over-limit frame sent whole", overLimit(frames, bearer(tok1), 413, "Request body size is too large"))
	t.Run("whole body without a token", overLimit("/face-detector-face-fitter/process/sample", "Bearer wrong-0123456789abc", 401, "Invalid token"))
	if st, b, _ := send(req{"POST", "/face-detector-face-fitter/process/sample", api, "application/json", sampleBody}); st != 200 {
		t.Fatalf("after the bad inputs the fitter answers %d: %.200s", st, b)
	}
}
