package sessions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/internal/testenv"
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
	m, err := NewManager(cfg, testAnalyzer(t), sink, nil, nil)
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
	code, b := testenv.PostImage(t, srv.URL+Prefix+"/"+id+"/frames", jpg, map[string]string{"t_ms": strconv.FormatInt(tMS, 10)})
	var g Guidance
	if code == http.StatusOK {
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
	}
	return code, g, string(b)
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
			if g.Result == nil {
				t.Fatalf("%s: no decision: %s", c.clip, describe(g))
			}
			if g.Status != Succeeded || g.Result.Liveness.Value != "REAL" {
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
		// check is the check that must catch the replay: the phone in view
		// (device), or the monitor's frame and the video's black bars around
		// the face (bezel).
		check string
	}{
		// the replayed video turns like the live one does
		{"tranvanluyt_replay_screen.mp4", `["turn_left","turn_right"]`, "bezel"},
		{"tranvanluyt_replay_screen.mp4", `[]`, "bezel"},
		{"lestari_replay_phone.mp4", `[]`, "device"},
		{"lestari_replay_phone.mp4", `["blink"]`, "device"},
	}
	for _, c := range cases {
		t.Run(c.clip+c.challenges, func(t *testing.T) {
			s := createSession(t, srv, `{"challenges": `+c.challenges+`, "timeout_s": 60}`)
			g, codes := runSession(t, srv, dir, s.ID, clipPart{file: c.clip})
			t.Logf("%s %s: instructions %v; %s", c.clip, c.challenges, codes, describe(g))
			if g.Status == Succeeded || (g.Result != nil && g.Result.Liveness.Value == "REAL") {
				t.Fatalf("%s: a replay passed: %s", c.clip, describe(g))
			}
			var check map[string]any
			if g.Result != nil {
				check, _ = g.Result.Checks[c.check].(map[string]any)
			}
			if check == nil || check["passed"] != false {
				t.Errorf("%s: the %s check did not catch the replay: %s", c.clip, c.check, describe(g))
			}
		})
	}
}

// One still frame repeated for the whole session fails, with or without challenges.
func TestKioskStillFrameFails(t *testing.T) {
	srv, _, _ := kioskServer(t, nil)
	dir, _ := kioskClips(t)
	var still gocv.Mat
	eachFrame(t, filepath.Join(dir, "tranvanluyt_live.mp4"), 1, func(img gocv.Mat, tMS int64) bool {
		still = img.Clone()
		return false
	})
	defer still.Close()
	for _, challenges := range []string{`[]`, `["blink"]`} {
		s := createSession(t, srv, `{"challenges": `+challenges+`, "timeout_s": 20}`)
		var g Guidance
		for tMS := int64(0); tMS <= 15000 && (tMS == 0 || !g.Status.Finished()); tMS += 100 {
			code, got, body := postFrame(t, srv, s.ID, still, tMS)
			if code != http.StatusOK {
				t.Fatalf("frame: %d %s", code, body)
			}
			g = got
		}
		t.Logf("still frame, challenges %s: %s", challenges, describe(g))
		if g.Status != Failed || g.Result == nil || g.Result.Liveness.Value != "FAKE" {
			t.Errorf("a still frame with challenges %s: want failed and FAKE, got %s", challenges, describe(g))
		}
	}
}

// A challenge performed before it was asked does not count: the clip turns
// to the person's own left at 2-5.5 s, before turn_left is asked (once the
// turn to their right at 7.5-10.5 s is done), and never again after.
func TestKioskChallengeBeforeAskedDoesNotCount(t *testing.T) {
	// The clip comes back from its turn to the right at 10.8 s.
	srv, _, _ := kioskServer(t, func(c *Config) { c.ChallengeTimeout = 12 * time.Second })
	dir, _ := kioskClips(t)
	s := createSession(t, srv, `{"challenges": ["turn_right", "turn_left"], "timeout_s": 60}`)
	g, codes := runSession(t, srv, dir, s.ID, clipPart{file: "tranvanluyt_live.mp4"},
		// the clip's frontal end, held on until the challenge's time is up
		clipPart{file: "tranvanluyt_live.mp4", fromMS: 17000, offsetMS: 20000},
		clipPart{file: "tranvanluyt_live.mp4", fromMS: 17000, offsetMS: 23000})
	t.Logf("instructions %v; %s", codes, describe(g))
	if g.Status != Failed {
		t.Fatalf("want failed, got %s", describe(g))
	}
	if !strings.Contains(g.Result.Reason, "turn_left") {
		t.Errorf("want turn_left to be the challenge not performed, got %q", g.Result.Reason)
	}
}

// A session that swaps one person's clip for another's midway fails the
// continuity check.
func TestKioskSwapFails(t *testing.T) {
	srv, _, _ := kioskServer(t, nil)
	dir, _ := kioskClips(t)
	s := createSession(t, srv, `{"challenges": ["blink"], "timeout_s": 60}`)
	g, codes := runSession(t, srv, dir, s.ID,
		clipPart{file: "tranvanluyt_live.mp4", toMS: 1500},
		clipPart{file: "liveportrait_d9_live.mp4", offsetMS: 1600})
	t.Logf("instructions %v; %s", codes, describe(g))
	if g.Status == Succeeded || g.Result == nil {
		t.Fatalf("a swapped session passed or did not end: %s", describe(g))
	}
	cont, _ := g.Result.Checks["continuity"].(map[string]any)
	if cont["passed"] != false {
		t.Errorf("continuity passed on a swap: %v", cont)
	}
}

// Malformed requests get a 4xx {"detail"} and change nothing; the bounds hold.
func TestSessionBadInput(t *testing.T) {
	srv, _, _ := kioskServer(t, func(c *Config) { c.MaxOpen = 2 })
	detail := func(method, path, ctype, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d struct{ Detail string }
		if json.NewDecoder(resp.Body).Decode(&d); resp.StatusCode != want || d.Detail == "" {
			t.Errorf("%s %s %q: %d %q, want %d with a detail", method, path, body, resp.StatusCode, d.Detail, want)
		}
	}
	detail("POST", Prefix, "application/json", `{"challenges": ["jump"]}`, 400)
	detail("POST", Prefix, "application/json", `{"challenges": "blink"}`, 400)
	detail("POST", Prefix, "application/json", `{"timeout_s": 100000}`, 400)
	detail("POST", Prefix, "application/json", `{"source": "camera:door"}`, 400)
	detail("POST", Prefix, "application/json", `{"colour": "red"}`, 400)
	detail("POST", Prefix, "application/json", `{`, 400)
	detail("POST", Prefix, "application/json", `{"reference": {"$template": "@@"}}`, 400)
	detail("POST", Prefix, "application/json", `{"reference": {"$template": "AAAA"}}`, 400)
	detail("GET", Prefix+"/nope", "", "", 404)
	detail("POST", Prefix+"/nope/frames", "application/json", `{"$image": "AAAA"}`, 404)
	detail("PUT", Prefix+"/nope", "", "", 405)
	s := createSession(t, srv, `{}`)
	if len(s.Challenges) != DefaultConfig().ChallengesCount {
		t.Errorf("drawn challenges %v, want %d", s.Challenges, DefaultConfig().ChallengesCount)
	}
	detail("POST", Prefix+"/"+s.ID+"/frames", "application/json", `{"$image": "@@"}`, 400)
	detail("POST", Prefix+"/"+s.ID+"/frames", "application/json", `{"$image": "AAAA"}`, 400)
	detail("POST", Prefix+"/"+s.ID+"/frames", "application/json", `{"t_ms": 5}`, 400)
	detail("POST", Prefix+"/"+s.ID+"/frames", "multipart/form-data; boundary=x", "--x--\r\n", 400)
	big := strings.Repeat("A", int(DefaultConfig().MaxFrameBytes*2))
	detail("POST", Prefix+"/"+s.ID+"/frames", "application/json", `{"$image": "`+big+`"}`, 413)
	createSession(t, srv, `{}`)
	detail("POST", Prefix, "application/json", `{}`, 429)
	// A canceled session frees its place and takes no more frames.
	req, _ := http.NewRequest("DELETE", srv.URL+Prefix+"/"+s.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("cancel: %d", resp.StatusCode)
	}
	detail("POST", Prefix+"/"+s.ID+"/frames", "application/json", `{"$image": "`+stillJPEG(t)+`"}`, 409)
	createSession(t, srv, `{}`)
}

func stillJPEG(t *testing.T) string {
	img := gocv.NewMatWithSize(48, 64, gocv.MatTypeCV8UC3)
	defer img.Close()
	b, err := estimators.EncodeJPEG(img, 80)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// A best-shot crop is kept only when the session asks for it, is served by
// GET, and shows the face; it never goes to the result sink (MQTT).
func TestKioskBestShot(t *testing.T) {
	srv, m, sink := kioskServer(t, nil)
	dir, _ := kioskClips(t)
	for _, want := range []bool{true, false} {
		s := createSession(t, srv, fmt.Sprintf(`{"challenges": [], "best_shot": %v}`, want))
		g, _ := runSession(t, srv, dir, s.ID, clipPart{file: "lestari_live.mp4"})
		if g.Result == nil {
			t.Fatalf("no decision: %s", describe(g))
		}
		resp, err := http.Get(srv.URL + Prefix + "/" + s.ID)
		if err != nil {
			t.Fatal(err)
		}
		var v View
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !want {
			if v.BestShot != "" {
				t.Errorf("a session that did not ask for a best shot has one")
			}
			continue
		}
		jpg, err := base64.StdEncoding.DecodeString(v.BestShot)
		if err != nil || len(jpg) == 0 {
			t.Fatalf("best shot: %d bytes, %v", len(jpg), err)
		}
		img, err := gocv.IMDecode(jpg, gocv.IMReadColor)
		if err != nil || img.Empty() {
			t.Fatalf("best shot does not decode: %v", err)
		}
		obs, err := m.analyzer.Observe(context.Background(), img, What{})
		img.Close()
		if err != nil || obs.Face == nil {
			t.Errorf("no face in the best shot (%v)", err)
		}
	}
	for _, f := range sink.got {
		if b, _ := json.Marshal(f); strings.Contains(string(b), "best_shot") {
			t.Errorf("a finished session sent to the sink carries the best shot")
		}
	}
}
