package main

// Real-browser tests of the kiosk page (ui/static/kiosk): Debian's chromium,
// headless, with a fake camera, against the daemon on a loopback port. Every
// request that does not go to 127.0.0.1 is blocked twice: by the resolver
// and proxy flags (for the browser itself) and by Fetch interception (for
// the page, which the tests also require to make none).
//
// Screenshots go to $KIOSK_SCREENSHOTS when set, else to the test's
// temporary directory; their paths are logged.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"imageapid/internal/testenv"
)

// kioskClip is the live clip the flow test plays as the camera: the person
// turns to their own left at 2-5.5 s and to their own right at 7.5-10.5 s
// (../shared/kiosk/manifest.json lists those as image turn_right and
// turn_left). The converted clip is cut at kioskClipCut, on a frontal face,
// so Chromium's loop back to its start does not jump, and starts with
// kioskClipLead seconds of frontal face (the clip's first 1.75 s forwards,
// then backwards), so a daemon slow to answer its first frames still has
// its frontal baseline before the first turn.
const (
	kioskClip     = "tranvanluyt_live.mp4"
	kioskClipCut  = 11.5
	kioskClipLead = 3.5
	kioskClipLoop = kioskClipLead + kioskClipCut
)

// recorderJS runs before the page's own scripts: it records each
// instruction code the page shows (with the preview's play time) and any
// Content-Security-Policy violation.
const recorderJS = `
window.__kiosk = {codes: [], csp: []};
document.addEventListener("securitypolicyviolation", (e) => {
  window.__kiosk.csp.push(e.violatedDirective + " " + e.blockedURI);
});
new MutationObserver(() => {
  const el = document.getElementById("instruction");
  if (!el) return;
  const codes = window.__kiosk.codes;
  const code = el.dataset.code;
  if (codes.length && codes[codes.length - 1].code === code) return;
  const v = document.getElementById("video");
  codes.push({code, video_s: v ? v.currentTime : -1, t_ms: performance.now()});
}).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ["data-code"]});
`

type shownCode struct {
	Code   string  `json:"code"`
	VideoS float64 `json:"video_s"`
	TMS    float64 `json:"t_ms"`
}

type rect struct{ X, Y, W, H float64 }

// kioskState is what the tests read from the page.
type kioskState struct {
	Phase       string      `json:"phase"`
	Session     string      `json:"session"`
	Code        string      `json:"code"`
	Text        string      `json:"text"`
	FontPx      float64     `json:"font_px"`
	Steps       string      `json:"steps"`
	OutcomeKind string      `json:"outcome_kind"`
	OutcomeText string      `json:"outcome_title"`
	OvalState   string      `json:"oval_state"`
	Oval        rect        `json:"oval"`
	Panel       rect        `json:"panel"`
	Instruction rect        `json:"instruction"`
	Viewport    rect        `json:"viewport"`
	VideoW      int         `json:"video_w"`
	VideoH      int         `json:"video_h"`
	Mirrored    bool        `json:"mirrored"`
	LiveRegion  string      `json:"live_region"`
	Codes       []shownCode `json:"codes"`
	CSP         []string    `json:"csp"`
}

const stateJS = `(() => {
  const $ = (id) => document.getElementById(id);
  const r = (el) => { const b = el.getBoundingClientRect(); return {X: b.x, Y: b.y, W: b.width, H: b.height}; };
  const v = $("video");
  return {
    phase: document.body.dataset.phase || "",
    session: document.body.dataset.session || "",
    code: $("instruction").dataset.code || "",
    text: $("instruction-text").textContent,
    font_px: parseFloat(getComputedStyle($("instruction-text")).fontSize),
    steps: $("steps").textContent,
    outcome_kind: $("outcome").hidden ? "" : $("outcome").dataset.kind,
    outcome_title: $("outcome-title").textContent,
    oval_state: $("oval").dataset.state,
    oval: r($("oval")),
    panel: r(document.querySelector(".panel")),
    instruction: r($("instruction")),
    viewport: {X: 0, Y: 0, W: innerWidth, H: innerHeight},
    video_w: v.videoWidth, video_h: v.videoHeight,
    mirrored: getComputedStyle(v).transform !== "none",
    live_region: $("instruction-text").getAttribute("aria-live") || "",
    codes: window.__kiosk ? window.__kiosk.codes : [],
    csp: window.__kiosk ? window.__kiosk.csp : [],
  };
})()`

// kioskBrowser is one headless chromium with one tab.
type kioskBrowser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	blocked  []string // non-loopback URLs the page asked for
	posts    []string // bodies of POST /v1/liveness/sessions
	frames   int      // POST .../frames requests
	auth     []string // Authorization headers of API requests
	errors   []string // uncaught JavaScript exceptions
	shotsDir string
}

// needChromium skips the test when Debian's chromium is not installed.
func needChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	t.Skip("chromium is not installed (scripts/deps.sh installs Debian's chromium)")
	return ""
}

// newKioskBrowser starts chromium with a fake camera: clip (a .y4m file)
// when given, else Chromium's built-in test pattern.
func newKioskBrowser(t *testing.T, clip string) *kioskBrowser {
	t.Helper()
	bin := needChromium(t)
	b := &kioskBrowser{t: t, shotsDir: os.Getenv("KIOSK_SCREENSHOTS")}
	if b.shotsDir == "" {
		b.shotsDir = t.TempDir()
	} else if err := os.MkdirAll(b.shotsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		// Nothing but loopback resolves, and everything else goes to a
		// proxy that is not there.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.ProxyServer("http://127.0.0.1:9"),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	if clip != "" {
		opts = append(opts, chromedp.Flag("use-file-for-fake-video-capture", clip))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b.ctx = ctx
	// The events are decoded here, field by field, rather than with
	// cdp.Events: a subscription there ends at the first event its types
	// cannot decode, which would leave every later request paused.
	target := chromedp.FromContext(ctx).Target
	paused, stopPaused := target.Subscribe("Fetch.requestPaused")
	exceptions, stopExceptions := target.Subscribe("Runtime.exceptionThrown")
	t.Cleanup(func() { stopPaused(); stopExceptions() })
	go func() {
		for raw := range paused {
			var ev pausedRequest
			if err := json.Unmarshal([]byte(raw), &ev); err != nil {
				b.mu.Lock()
				b.errors = append(b.errors, "undecodable Fetch.requestPaused: "+err.Error())
				b.mu.Unlock()
				continue
			}
			go b.decide(ev)
		}
	}()
	go func() {
		for raw := range exceptions {
			var ev struct {
				ExceptionDetails struct {
					Text       string `json:"text"`
					URL        string `json:"url"`
					LineNumber int    `json:"lineNumber"`
					Exception  *struct {
						Description string `json:"description"`
					} `json:"exception"`
				} `json:"exceptionDetails"`
			}
			json.Unmarshal([]byte(raw), &ev)
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg = d.Exception.Description
			}
			b.mu.Lock()
			b.errors = append(b.errors, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
			b.mu.Unlock()
		}
	}()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, runtime.Enable, cdp.Empty{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recorderJS}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, fetch.Enable, fetch.EnableParams{})
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pausedRequest is the part of Fetch.requestPaused the tests read.
type pausedRequest struct {
	RequestID fetch.RequestID `json:"requestId"`
	Request   struct {
		URL             string            `json:"url"`
		Method          string            `json:"method"`
		Headers         map[string]string `json:"headers"`
		PostDataEntries []struct {
			Bytes []byte `json:"bytes"` // base64 in the protocol
		} `json:"postDataEntries"`
	} `json:"request"`
}

// decide lets loopback requests through and fails every other one.
func (b *kioskBrowser) decide(ev pausedRequest) {
	req := ev.Request
	u, err := url.Parse(req.URL)
	loopback := err == nil && (u.Scheme == "http" || u.Scheme == "ws") && u.Hostname() == "127.0.0.1"
	b.mu.Lock()
	if !loopback {
		b.blocked = append(b.blocked, req.URL)
	} else if strings.HasPrefix(u.Path, "/v1/") {
		if a, ok := req.Headers["Authorization"]; ok {
			b.auth = append(b.auth, a)
		}
		if req.Method == http.MethodPost && u.Path == "/v1/liveness/sessions" {
			var body []byte
			for _, e := range req.PostDataEntries {
				body = append(body, e.Bytes...)
			}
			b.posts = append(b.posts, string(body))
		}
		if req.Method == http.MethodPost && strings.HasSuffix(u.Path, "/frames") {
			b.frames++
		}
	}
	b.mu.Unlock()
	if loopback {
		chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
	} else {
		chromedp.Call(b.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
	}
}

func (b *kioskBrowser) viewport(w, h int64) {
	b.t.Helper()
	orient := chromedp.EmulatePortrait
	if w > h {
		orient = chromedp.EmulateLandscape
	}
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(w, h, orient)); err != nil {
		b.t.Fatal(err)
	}
}

func (b *kioskBrowser) open(u string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(u)); err != nil {
		b.t.Fatalf("open %s: %v", u, err)
	}
}

func (b *kioskBrowser) state() kioskState {
	b.t.Helper()
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](stateJS))
	if err != nil {
		b.t.Fatalf("read the page: %v", err)
	}
	var s kioskState
	if err := json.Unmarshal(raw, &s); err != nil {
		b.t.Fatalf("page state %s: %v", raw, err)
	}
	return s
}

// waitFor polls the page until ok holds or timeout passes.
func (b *kioskBrowser) waitFor(what string, timeout time.Duration, ok func(kioskState) bool) kioskState {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := b.state()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			b.mu.Lock()
			frames, blocked := b.frames, b.blocked
			b.mu.Unlock()
			b.t.Fatalf("waited %v for %s; page: phase %q code %q text %q outcome %q %q; video %dx%d; codes %v; %d frames posted; blocked %v; errors %v",
				timeout, what, s.Phase, s.Code, s.Text, s.OutcomeKind, s.OutcomeText, s.VideoW, s.VideoH, s.Codes, frames, blocked, b.jsErrors())
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (b *kioskBrowser) screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(b.shotsDir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
	return p
}

func (b *kioskBrowser) frameCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.frames
}

func (b *kioskBrowser) jsErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.errors)
}

// checkClean fails the test on blocked requests, CSP violations and
// uncaught exceptions.
func (b *kioskBrowser) checkClean(s kioskState) {
	b.t.Helper()
	b.mu.Lock()
	blocked := slices.Clone(b.blocked)
	b.mu.Unlock()
	if len(blocked) > 0 {
		b.t.Errorf("the page asked for non-loopback URLs: %v", blocked)
	}
	if len(s.CSP) > 0 {
		b.t.Errorf("Content-Security-Policy violations: %v", s.CSP)
	}
	if errs := b.jsErrors(); len(errs) > 0 {
		b.t.Errorf("uncaught JavaScript exceptions: %v", errs)
	}
}

// checkLayout checks the oval and the instruction fit the viewport side by
// side (landscape) or one above the other (portrait) with large text.
func checkLayout(t *testing.T, name string, s kioskState) {
	t.Helper()
	vp := s.Viewport
	inside := func(r rect) bool {
		return r.W > 0 && r.H > 0 && r.X >= -1 && r.Y >= -1 && r.X+r.W <= vp.W+1 && r.Y+r.H <= vp.H+1
	}
	if !inside(s.Oval) || !inside(s.Panel) || !inside(s.Instruction) {
		t.Errorf("%s: oval %+v, panel %+v or instruction %+v outside the viewport %+v", name, s.Oval, s.Panel, s.Instruction, vp)
	}
	if ratio := s.Oval.H / s.Oval.W; ratio < 1.25 || ratio > 1.42 {
		t.Errorf("%s: the oval is %.0fx%.0f, not an upright 3:4 oval", name, s.Oval.W, s.Oval.H)
	}
	if vp.W > vp.H {
		if s.Oval.X+s.Oval.W > s.Panel.X+1 {
			t.Errorf("%s: landscape oval %+v overlaps the panel %+v", name, s.Oval, s.Panel)
		}
		if s.Oval.H < 0.6*vp.H {
			t.Errorf("%s: landscape oval height %.0f is small for %.0f", name, s.Oval.H, vp.H)
		}
	} else {
		if s.Oval.Y+s.Oval.H > s.Panel.Y+1 {
			t.Errorf("%s: portrait oval %+v overlaps the panel %+v", name, s.Oval, s.Panel)
		}
		if s.Oval.W < 0.5*vp.W {
			t.Errorf("%s: portrait oval width %.0f is small for %.0f", name, s.Oval.W, vp.W)
		}
	}
	if s.FontPx < 36 {
		t.Errorf("%s: instruction text is %.0f px; a kiosk needs large text", name, s.FontPx)
	}
	if s.LiveRegion == "" {
		t.Errorf("%s: the instruction is not an aria-live region", name)
	}
	if !s.Mirrored {
		t.Errorf("%s: the preview is not mirrored", name)
	}
}

// requireSessions fails the test unless the daemon serves liveness
// sessions, deleting the session it opens to find out.
func requireSessions(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Post(base+"/v1/liveness/sessions", "application/json", strings.NewReader(`{"source":"frames","timeout_s":5}`))
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || s.ID == "" {
		t.Fatalf("POST /v1/liveness/sessions answered %d: the daemon must serve the sessions the kiosk page opens", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"/v1/liveness/sessions/"+url.PathEscape(s.ID), nil)
	if r, err := http.DefaultClient.Do(req); err == nil {
		r.Body.Close()
	}
}

// TestKioskPageRenders loads /kiosk in portrait 1080x1920 and landscape
// 1280x800 with Chromium's test-pattern camera: the page shows its oval and
// one instruction, creates its session with the query's challenges and
// timeout (passed through), sends the token as a Bearer header, and asks
// for nothing off the loopback.
func TestKioskPageRenders(t *testing.T) {
	needChromium(t)
	addr, stop := startDaemon(t, testConfig(t))
	defer stop()
	base := "http://" + addr
	requireSessions(t, base)
	b := newKioskBrowser(t, "")
	for _, size := range []struct {
		name string
		w, h int64
	}{{"portrait", 1080, 1920}, {"landscape", 1280, 800}} {
		b.viewport(size.w, size.h)
		b.open(base + "/kiosk?challenges=blink,turn_left&timeout_s=15&token=t0ken&reset_s=0")
		s := b.waitFor("the session request's answer", 20*time.Second, func(s kioskState) bool {
			return s.Phase == "running" && s.Code != "starting" || s.Phase == "error"
		})
		if s.Phase != "running" || s.Session == "" {
			t.Fatalf("%s: the page did not start a session: %+v", size.name, s)
		}
		// The test pattern has no face: the guidance of posted frames must
		// say so (the page shows a code once two answers agree).
		before := b.frameCount()
		s = b.waitFor("guidance for posted frames", 20*time.Second, func(s kioskState) bool {
			return b.frameCount() >= before+3 && slices.ContainsFunc(s.Codes, func(c shownCode) bool { return c.Code == "no_face" })
		})
		if s.Text == "" || s.Code == "starting" {
			t.Errorf("%s: no instruction shown: %+v", size.name, s)
		}
		checkLayout(t, size.name, s)
		if s.VideoW == 0 || s.VideoH == 0 {
			t.Errorf("%s: the camera preview has no picture", size.name)
		}
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector("#oval .ring .ring-track") !== null`)); err != nil || !ok {
			t.Errorf("%s: the oval guide is missing (%v)", size.name, err)
		}
		if strings.Contains(s.Text, "t0ken") || strings.Contains(fmt.Sprint(s), "t0ken") {
			t.Errorf("%s: the token shows on the page", size.name)
		}
		loc, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href`))
		if strings.Contains(loc, "t0ken") {
			t.Errorf("%s: the token stays in the address bar: %s", size.name, loc)
		}
		b.screenshot("kiosk-render-" + size.name + ".png")
		b.checkClean(s)
	}
	b.mu.Lock()
	posts, auth := slices.Clone(b.posts), slices.Clone(b.auth)
	b.mu.Unlock()
	if len(posts) < 2 {
		t.Fatalf("want a POST /v1/liveness/sessions per page load, got %d", len(posts))
	}
	for _, p := range posts {
		var body map[string]any
		if err := json.Unmarshal([]byte(p), &body); err != nil {
			t.Errorf("session request body %q: %v", p, err)
			continue
		}
		if body["source"] != "frames" || fmt.Sprint(body["challenges"]) != "[blink turn_left]" || body["timeout_s"] != 15.0 {
			t.Errorf("session request %s: want source frames, challenges [blink turn_left], timeout_s 15", p)
		}
	}
	if len(auth) == 0 || !slices.Contains(auth, "Bearer t0ken") {
		t.Errorf("API requests must carry the page's token as a Bearer header, got %v", auth)
	}
}

// y4mClip converts ../shared/kiosk/<name> into a .y4m file Chromium can play
// as a fake camera: 480 px high, 15 fps, cut at kioskClipCut seconds and led
// by kioskClipLead seconds of its frontal start.
func y4mClip(t *testing.T, name string) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg is not installed (scripts/deps.sh installs it)")
	}
	src := filepath.Join(testenv.Root(t), "..", "shared", "kiosk", name)
	if _, err := os.Stat(src); err != nil {
		t.Skipf("the kiosk clips are not here (%v): the flow test needs ../shared/kiosk", err)
	}
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(name, filepath.Ext(name))+".y4m")
	half := fmt.Sprint(kioskClipLead / 2)
	graph := "[0:v]trim=0:" + fmt.Sprint(kioskClipCut) + ",setpts=PTS-STARTPTS,scale=-2:480,fps=15,split=3[a][b][c];" +
		"[a]trim=0:" + half + ",setpts=PTS-STARTPTS[fwd];[b]trim=0:" + half + ",setpts=PTS-STARTPTS,reverse[back];" +
		"[fwd][back][c]concat=n=3:v=1[out]"
	cmd := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-y", "-i", src, "-filter_complex", graph, "-map", "[out]",
		"-pix_fmt", "yuv420p", "-an", "-f", "yuv4mpegpipe", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, msg)
	}
	return out
}

// TestKioskLivenessFlow plays a live person's clip as the browser's camera
// and runs the page's whole flow against the daemon's sessions backend with
// challenges turn_left then turn_right: the page must show them in that
// order, the left one while the clip turns to the person's own left (so
// the frames sent are the camera's unmirrored image), and end on an
// outcome screen.
func TestKioskLivenessFlow(t *testing.T) {
	needChromium(t)
	clip := y4mClip(t, kioskClip)
	cfg := testConfig(t)
	// The clip's person turns slowly: asked at about 1 s of the preview,
	// the first turn comes back to frontal at 9.5 s, past the default 8 s.
	cfg.Sessions.ChallengeTimeout = 12 * time.Second
	addr, stop := startDaemon(t, cfg)
	defer stop()
	base := "http://" + addr
	requireSessions(t, base)
	b := newKioskBrowser(t, clip)
	b.viewport(1080, 1920)
	b.open(base + "/kiosk?challenges=turn_left,turn_right&timeout_s=60&reset_s=0")

	shots := map[string]bool{}
	shot := func(name string, w, h int64) {
		if shots[name] {
			return
		}
		shots[name] = true
		b.viewport(w, h)
		b.screenshot(name)
	}
	s := b.waitFor("the outcome screen", 120*time.Second, func(s kioskState) bool {
		switch {
		case s.Code == "turn_left" && s.Phase == "running":
			shot("kiosk-flow-portrait-turn_left.png", 1080, 1920)
			checkLayout(t, "portrait", b.state())
		case s.Code == "turn_right" && s.Phase == "running":
			shot("kiosk-flow-landscape-turn_right.png", 1280, 800)
			checkLayout(t, "landscape", b.state())
		}
		return s.Phase == "outcome" || s.Phase == "error"
	})
	b.viewport(1280, 800)
	b.screenshot("kiosk-flow-landscape-outcome.png")
	b.viewport(1080, 1920)
	b.screenshot("kiosk-flow-portrait-outcome.png")

	var codes []string
	for _, c := range s.Codes {
		codes = append(codes, fmt.Sprintf("%s@%.2fs", c.Code, c.VideoS))
	}
	b.mu.Lock()
	frames := b.frames
	b.mu.Unlock()
	t.Logf("outcome %q (%s) after %d frames; instructions shown (at the preview's play time): %s",
		s.OutcomeKind, s.OutcomeText, frames, strings.Join(codes, " "))
	if s.Phase != "outcome" || (s.OutcomeKind != "success" && s.OutcomeKind != "retry") {
		t.Fatalf("the flow must end on an outcome screen, got phase %q kind %q (%s)", s.Phase, s.OutcomeKind, s.OutcomeText)
	}
	left := slices.IndexFunc(s.Codes, func(c shownCode) bool { return c.Code == "turn_left" })
	right := slices.IndexFunc(s.Codes, func(c shownCode) bool { return c.Code == "turn_right" })
	if left < 0 || right < 0 || right < left {
		t.Fatalf("want turn_left shown, then turn_right; shown: %v", codes)
	}
	if slices.ContainsFunc(s.Codes[right:], func(c shownCode) bool { return c.Code == "turn_left" }) {
		t.Errorf("turn_left came back after turn_right: %v", codes)
	}
	// turn_left is done (turn_right asked) while, or just after, the clip
	// turns to the person's own left; mirrored frames would finish it in
	// the clip's right turn instead.
	if at := modLoop(s.Codes[right].VideoS) - kioskClipLead; at < 2.0 || at > 7.5 {
		t.Errorf("turn_left was accepted at %.2f s of the original clip, outside its left turn (2-5.5 s, plus latency)", at)
	}
	if frames < 10 {
		t.Errorf("only %d frames were posted", frames)
	}
	b.checkClean(s)
	if s.OutcomeKind != "success" {
		// The verdict is the backend's; the page's part is to show it.
		resp, err := http.Get(base + "/v1/liveness/sessions/" + url.PathEscape(s.Session))
		if err == nil {
			var v struct {
				Status string `json:"status"`
				Result struct {
					Liveness map[string]any `json:"liveness"`
					Reason   string         `json:"reason"`
				} `json:"result"`
			}
			json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			t.Logf("note: the backend did not find the live clip REAL: status %s, liveness %v, reason %q", v.Status, v.Result.Liveness, v.Result.Reason)
		}
	}
}

func modLoop(s float64) float64 {
	for s >= kioskClipLoop {
		s -= kioskClipLoop
	}
	return s
}
