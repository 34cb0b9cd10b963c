package sessions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators"
)

// kioskServer serves the session routes over real HTTP on loopback with
// the real models.
func kioskServer(t *testing.T, mutate func(*Config)) (*httptest.Server, *Manager, *recordingSink) {
	t.Helper()
	cfg := DefaultConfig()
	// The clips are phone videos whose people take their time: a kiosk
	// would allow as much.
	cfg.ChallengeTimeout = 10 * time.Second
	cfg.MaxTimeout = 5 * time.Minute
	if mutate != nil {
		mutate(&cfg)
	}
	sink := &recordingSink{}
	m, err := NewManager(cfg, testAnalyzer(t), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler(time.Minute))
	t.Cleanup(srv.Close)
	return srv, m, sink
}

type recordingSink struct{ got []Finished }

func (r *recordingSink) SessionFinished(_ context.Context, f Finished) error {
	r.got = append(r.got, f)
	return nil
}

func createSession(t *testing.T, srv *httptest.Server, body string) Created {
	t.Helper()
	resp, err := http.Post(srv.URL+Prefix, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %d %s", body, resp.StatusCode, b)
	}
	var c Created
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// postFrame sends one frame as a multipart form with its t_ms.
func postFrame(t *testing.T, srv *httptest.Server, id string, img gocv.Mat, tMS int64) (int, Guidance, string) {
	t.Helper()
	jpg, err := estimators.EncodeJPEG(img, 90)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("image", "frame.jpg")
	fw.Write(jpg)
	mw.WriteField("t_ms", strconv.FormatInt(tMS, 10))
	mw.Close()
	resp, err := http.Post(srv.URL+Prefix+"/"+id+"/frames", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var g Guidance
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, g, string(b)
}

// run posts the frames of clips (each from its from_ms to its to_ms, on
// one session clock) until the session finishes, and returns the last
// guidance and the instruction codes in the order they were first given.
type clipPart struct {
	file       string
	fromMS     int64
	toMS       int64
	offsetMS   int64
	frameEvery int
}

func runSession(t *testing.T, srv *httptest.Server, dir, id string, parts ...clipPart) (Guidance, []string) {
	t.Helper()
	var last Guidance
	var codes []string
	finished := false
	for _, p := range parts {
		every := p.frameEvery
		if every == 0 {
			every = 3
		}
		eachFrame(t, filepath.Join(dir, p.file), every, func(img gocv.Mat, tMS int64) bool {
			if tMS < p.fromMS {
				return true
			}
			if p.toMS > 0 && tMS > p.toMS {
				return false
			}
			code, g, body := postFrame(t, srv, id, img, tMS-p.fromMS+p.offsetMS)
			if code == http.StatusConflict {
				finished = true
				return false
			}
			if code != http.StatusOK {
				t.Fatalf("frame at %d ms: %d %s", tMS, code, body)
			}
			last = g
			if len(codes) == 0 || codes[len(codes)-1] != g.Instruction.Code {
				codes = append(codes, g.Instruction.Code)
			}
			if g.Status.Finished() {
				finished = true
				return false
			}
			return true
		})
		if finished {
			break
		}
	}
	return last, codes
}

func describe(g Guidance) string {
	b, _ := json.Marshal(g.Result)
	return fmt.Sprintf("status %s, step %d/%d: %s", g.Status, g.Step, g.Steps, b)
}

// Every live clip succeeds with the challenges its labels allow, as
// directed to the person (the manifest's directions are the image's).
func TestKioskLiveClips(t *testing.T) {
	srv, _, sink := kioskServer(t, nil)
	dir, _ := kioskClips(t)
	cases := []struct {
		clip       string
		challenges string
	}{
		// turns to image-right (the person's own left) at 2-5.5 s, then to image-left at 7.5-10.5 s
		{"tranvanluyt_live.mp4", `["turn_left","turn_right"]`},
		{"lestari_live.mp4", `[]`},
		// blinks from 0.4 s on
		{"liveportrait_d9_live.mp4", `["blink"]`},
		// head pitched down at 4.0-5.25 s and 7.0-9.0 s
		{"liveportrait_d3_live.mp4", `["look_down"]`},
	}
	for _, c := range cases {
		t.Run(c.clip, func(t *testing.T) {
			s := createSession(t, srv, `{"challenges": `+c.challenges+`, "timeout_s": 60}`)
			g, codes := runSession(t, srv, dir, s.ID, clipPart{file: c.clip})
			t.Logf("%s: instructions %v; %s", c.clip, codes, describe(g))
			if g.Status != Succeeded || g.Result == nil || g.Result.Liveness.Value != "REAL" {
				t.Fatalf("%s: want succeeded and REAL, got %s", c.clip, describe(g))
			}
		})
	}
	if len(sink.got) != len(cases) {
		t.Errorf("the sink got %d finished sessions, want %d (once each)", len(sink.got), len(cases))
	}
}

// Every replay ends FAKE (or fails its challenge), whatever the challenges.
func TestKioskReplayClips(t *testing.T) {
	srv, _, _ := kioskServer(t, nil)
	dir, _ := kioskClips(t)
	cases := []struct {
		clip       string
		challenges string
	}{
		// the replayed video turns like the live one does
		{"tranvanluyt_replay_screen.mp4", `["turn_left","turn_right"]`},
		{"tranvanluyt_replay_screen.mp4", `[]`},
		{"lestari_replay_phone.mp4", `[]`},
		{"lestari_replay_phone.mp4", `["blink"]`},
	}
	for _, c := range cases {
		t.Run(c.clip+c.challenges, func(t *testing.T) {
			s := createSession(t, srv, `{"challenges": `+c.challenges+`, "timeout_s": 60}`)
			g, codes := runSession(t, srv, dir, s.ID, clipPart{file: c.clip})
			t.Logf("%s %s: instructions %v; %s", c.clip, c.challenges, codes, describe(g))
			if g.Status == Succeeded || (g.Result != nil && g.Result.Liveness.Value == "REAL") {
				t.Fatalf("%s: a replay passed: %s", c.clip, describe(g))
			}
		})
	}
}
