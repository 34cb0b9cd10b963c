package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"imageapid/daemon/admission"
	"imageapid/estimators/face"
	"imageapid/internal/testenv"
)

var defaultFace = face.Config{MinScore: 0.5, MaxFaces: 50}

type timed struct {
	status     int
	detail     string
	retryAfter string
	took       time.Duration
}

// burst posts the same image from n clients at once.
func burst(t *testing.T, url string, n int, img []byte) []timed {
	t.Helper()
	ct, body := multipartBody(t, "image", img)
	out := make([]timed, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			resp, err := http.Post(url, ct, bytes.NewReader(body))
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			var b struct {
				Detail any `json:"detail"`
			}
			json.NewDecoder(resp.Body).Decode(&b)
			d, _ := b.Detail.(string)
			out[i] = timed{resp.StatusCode, d, resp.Header.Get("Retry-After"), time.Since(t0)}
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func TestFullQueueIsAFast503(t *testing.T) {
	cfg := testConfig
	cfg.MaxConcurrent, cfg.MaxQueue, cfg.QueueTimeout = 1, 1, 20*time.Second
	url := newServerLimited(t, defaultFace, cfg, nil) + fitter + "/process/image"
	img := twoFaces(t)
	answers := burst(t, url, 12, img)
	ok, full := 0, 0
	for _, a := range answers {
		switch {
		case a.status == 200:
			ok++
		case a.status == 503 && strings.Contains(a.detail, "queue is full"):
			full++
			if a.retryAfter == "" {
				t.Errorf("a 503 without Retry-After")
			}
			if a.took > 3*time.Second {
				t.Errorf("a full queue must refuse at once; this 503 took %v", a.took)
			}
		default:
			t.Errorf("unexpected answer %+v", a)
		}
	}
	if ok < 1 || full < 1 {
		t.Errorf("12 clients on 1 slot + 1 queue place: %d answered 200 and %d a fast 503; want both", ok, full)
	}
	t.Logf("200: %d, 503 queue full: %d", ok, full)
}

func TestQueueTimeoutIs503(t *testing.T) {
	cfg := testConfig
	cfg.MaxConcurrent, cfg.MaxQueue, cfg.QueueTimeout = 1, 32, time.Millisecond
	url := newServerLimited(t, defaultFace, cfg, nil) + fitter + "/process/image"
	answers := burst(t, url, 6, twoFaces(t))
	timedOut := 0
	for _, a := range answers {
		if a.status == 503 && strings.Contains(a.detail, "no processing slot freed up") && a.retryAfter != "" {
			timedOut++
		} else if a.status != 200 {
			t.Errorf("unexpected answer %+v", a)
		}
	}
	if timedOut == 0 {
		t.Error("with a 1 ms queue timeout some of 6 clients on one slot must get the queue-timeout 503")
	}
}

// bodies puts the daemon's body budget in front of the server.
func withBodyBudget(budget *admission.Budget, readTimeout time.Duration) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return admission.Bodies(admission.BodyLimits{Budget: budget, Reserve: testConfig.MaxBodyBytes,
			Wait: 100 * time.Millisecond, ReadTimeout: readTimeout}, h)
	}
}

func TestBusyBodyIs503NotA400(t *testing.T) {
	budget := admission.NewBudget(8 << 20)
	base := newServerLimited(t, defaultFace, testConfig, withBodyBudget(budget, 5*time.Second))
	face1 := testenv.ReadFixture(t, "astronaut.png")
	hold, err := budget.Acquire(context.Background(), 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []response{
		postJSON(t, base+fitter+"/process/sample", map[string]any{"$image": b64(face1)}),
		postImage(t, base+fitter+"/process/image", face1),
	} {
		assertDetail(t, r, 503, "Server busy: the request body could not be read in time, try again shortly")
	}
	hold()
	if r := postImage(t, base+fitter+"/process/image", face1); r.Status != 200 {
		t.Errorf("once the budget frees up: %d %.200s", r.Status, r.Body)
	}
}

// rawRequest writes head and then the whole body on a new connection and
// reads the response.
func rawRequest(t *testing.T, base, head string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if body != nil {
		// Like a simple client: the whole body, paced as over a real link
		// (longer than the server's half-second linger), then the response.
		buf := make([]byte, 64<<10)
		for {
			n, err := body.Read(buf)
			if n > 0 {
				if _, werr := conn.Write(buf[:n]); werr != nil {
					t.Fatalf("sending the body: %v", werr)
				}
				time.Sleep(3 * time.Millisecond)
			}
			if err != nil {
				break
			}
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return resp, b
}

func TestStalledBodyIs503WithoutAddresses(t *testing.T) {
	base := newServerLimited(t, defaultFace, testConfig, withBodyBudget(admission.NewBudget(64<<20), 300*time.Millisecond))
	head := "POST " + fitter + "/process/sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
	resp, b := rawRequest(t, base, head+`{"$image": "AAAA`, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a body that stopped arriving: %d %s, want 503 with Retry-After", resp.StatusCode, b)
	}
	for _, leak := range []string{"127.0.0.1", "tcp", "i/o timeout"} {
		if bytes.Contains(b, []byte(leak)) {
			t.Errorf("the error text carries %q: %s", leak, b)
		}
	}
}

func TestOverLimitBodySentWholeGetsIts400(t *testing.T) {
	base := newServer(t)
	const size = 12 << 20
	for _, route := range []string{fitter + "/process/sample", fitter + "/process/image", "/v1/process"} {
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", route, size)
		resp, b := rawRequest(t, base, head, io.LimitReader(zeros{}, size))
		if resp.StatusCode != 400 || !bytes.Contains(b, []byte("Request body size is too large")) {
			t.Errorf("%s, whole 12 MB body: %d %s", route, resp.StatusCode, b)
		}
		if !resp.Close {
			t.Errorf("%s: the connection must close after an over-limit body", route)
		}
		// A client that waits for 100 Continue gets the 400 without sending.
		head = strings.Replace(head, "\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n", 1)
		resp, b = rawRequest(t, base, head, nil)
		if resp.StatusCode != 400 || !bytes.Contains(b, []byte("Request body size is too large")) {
			t.Errorf("%s, Expect: 100-continue: %d %s", route, resp.StatusCode, b)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
