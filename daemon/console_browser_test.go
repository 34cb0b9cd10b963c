package main

// A real-browser test of the web console (ui/static/console): Debian's
// chromium, headless, launched like the kiosk tests (newKioskBrowser: every
// request off the loopback is blocked and recorded), against the daemon
// playing the sample video as its camera.

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"imageapid/camera"
	"imageapid/internal/testenv"
	"imageapid/models"
)

// consoleState is what the test reads from the console page.
type consoleState struct {
	Page         string   `json:"page"`
	Status       string   `json:"status"`
	Preview      string   `json:"preview"`
	PreviewW     int      `json:"preview_w"`
	OverlayPx    int      `json:"overlay_px"`
	Events       int      `json:"events"`
	Kinds        []string `json:"kinds"`
	Thumbs       int      `json:"thumbs"`
	Models       []string `json:"models"`
	Fallbacks    int      `json:"fallbacks"`
	Routes       int      `json:"routes"`
	Config       string   `json:"config"`
	Version      string   `json:"version"`
	KioskLinkOn  bool     `json:"kiosk_link"`
	SparkPainted bool     `json:"spark_painted"`
	CSP          []string `json:"csp"`
}

// consoleStateJS reads the page. overlay_px counts the preview's pixels in
// the overlay's face green or body orange (the daemon draws the boxes; a
// JPEG shifts colours a little, hence the tolerance).
const consoleStateJS = `(() => {
  const tile = document.querySelector('.tile[data-camera="sample"]');
  const img = tile ? tile.querySelector(".tile-stream") : null;
  let overlay = 0;
  if (img && img.naturalWidth > 0) {
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const near = (i, r, gr, b) => Math.abs(d[i] - r) < 45 && Math.abs(d[i + 1] - gr) < 45 && Math.abs(d[i + 2] - b) < 45;
    for (let i = 0; i < d.length; i += 4) {
      if (near(i, 80, 220, 80) || near(i, 240, 170, 40)) overlay++;
    }
  }
  let painted = false;
  const spark = tile ? tile.querySelector(".spark-canvas") : null;
  if (spark) {
    const d = spark.getContext("2d").getImageData(0, 0, spark.width, spark.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) { painted = true; break; }
  }
  const rows = [...document.querySelectorAll("#events tr")];
  return {
    page: document.body.dataset.page,
    status: tile ? tile.querySelector(".tile-status").textContent : "",
    preview: tile ? (tile.dataset.preview || "") : "",
    preview_w: img ? img.naturalWidth : 0,
    overlay_px: overlay,
    events: rows.length,
    kinds: rows.map((r) => r.dataset.kind),
    thumbs: [...document.querySelectorAll("#events img.thumb")].filter((i) => i.complete && i.naturalWidth > 0).length,
    models: [...document.querySelectorAll("#sys-models tbody tr")].map((r) => r.dataset.model),
    fallbacks: document.querySelectorAll("#sys-models tr.fallback").length,
    routes: document.querySelectorAll("#sys-http tbody tr").length,
    config: document.getElementById("sys-config").textContent,
    version: document.getElementById("version").textContent,
    kiosk_link: !document.getElementById("link-kiosk").hidden,
    spark_painted: painted,
    csp: window.__kiosk ? window.__kiosk.csp : [],
  };
})()`

func (b *kioskBrowser) console() consoleState {
	b.t.Helper()
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](consoleStateJS))
	if err != nil {
		b.t.Fatalf("read the console: %v", err)
	}
	var s consoleState
	if err := json.Unmarshal(raw, &s); err != nil {
		b.t.Fatalf("console state %s: %v", raw, err)
	}
	return s
}

func (b *kioskBrowser) waitConsole(what string, timeout time.Duration, ok func(consoleState) bool) consoleState {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := b.console()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			s.Config = "(not shown)"
			b.t.Fatalf("waited %v for %s; page: %+v; JavaScript errors %v", timeout, what, s, b.jsErrors())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestConsoleInBrowser opens the console against a daemon playing the
// sample video (people walking) with best shots on: the camera tile shows
// live preview frames with the overlay's boxes and a painted sparkline,
// the Events page shows live events with best-shot thumbnails, and the
// System page lists every model of the manifest, highlights the one whose
// GPU delegate fell back, and shows the config with the password masked.
// The page asks for nothing off the loopback, breaks no CSP rule and
// throws no exception. Screenshots go where the kiosk tests put theirs.
func TestConsoleInBrowser(t *testing.T) {
	needChromium(t)
	cfg := testConfig(t)
	cfg.MQTT.Password = "console-secret"
	// One model asks for the GPU, whose library this box lacks: the System
	// page must highlight its fallback to XNNPACK.
	cfg.Models.PerModel = map[string]models.ModelOptions{"face_landmark": {Delegate: models.DelegateGPU}}
	cfg.Cameras = []camera.Config{{ID: "sample", Name: "Sample video", URL: testenv.Fixture(t, "vtest.avi"), Loop: true,
		Estimators: []string{detectFaces, hogPeople}, BodyEvery: 4, Events: camera.EventConfig{BestShotJPEG: true}}}
	addr, stop := startDaemon(t, cfg)
	defer stop()
	base := "http://" + addr
	manifest, err := models.LoadManifest(cfg.Models.Manifest)
	if err != nil {
		t.Fatal(err)
	}

	b := newKioskBrowser(t, "")
	b.viewport(1280, 900)
	b.open(base + "/")
	s := b.waitConsole("preview frames with the overlay's boxes", 60*time.Second, func(s consoleState) bool {
		return s.Preview == "live" && s.PreviewW > 0 && s.OverlayPx > 50 && s.Status == "connected"
	})
	if s.PreviewW > 640 {
		t.Errorf("the preview is %d px wide, over the 640 px cap", s.PreviewW)
	}
	if !s.KioskLinkOn {
		t.Error("the console does not link the kiosk page")
	}
	// The sparkline needs the first /v1/in-view answer after the tile exists.
	b.waitConsole("the in-view sparkline", 15*time.Second, func(s consoleState) bool { return s.SparkPainted })
	b.screenshot("console-cameras.png")

	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`location.hash = "#events", true`)); err != nil {
		t.Fatal(err)
	}
	s = b.waitConsole("live events with a best shot", 60*time.Second, func(s consoleState) bool {
		return s.Page == "events" && s.Events > 0 && s.Thumbs > 0
	})
	// Off the Cameras page the preview is closed (the daemon counts a
	// preview request when it ends).
	testenv.WaitFor(t, 10*time.Second, "the preview closed off the Cameras page", func() bool {
		return strings.Contains(getJSON(t, base+"/metrics", nil), `imageapid_http_requests_total{code="200",route="/v1/cameras/"}`)
	})
	if s.Preview != "paused" {
		t.Errorf("the tile's preview is %q off the Cameras page, want paused", s.Preview)
	}
	if !slices.Contains(s.Kinds, "track_new") {
		t.Errorf("no track_new among the events shown: %v", s.Kinds)
	}
	b.screenshot("console-events.png")

	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`location.hash = "#system", true`)); err != nil {
		t.Fatal(err)
	}
	s = b.waitConsole("the System page's models and routes", 20*time.Second, func(s consoleState) bool {
		return s.Page == "system" && len(s.Models) == len(manifest.Models) && s.Routes > 0
	})
	for _, m := range manifest.Models {
		if !slices.Contains(s.Models, m.Name) {
			t.Errorf("the System page does not list model %s", m.Name)
		}
	}
	if strings.Contains(s.Config, "console-secret") || !strings.Contains(s.Config, `"password": "********"`) {
		t.Errorf("the System page's config does not mask the MQTT password")
	}
	if s.Fallbacks != 1 {
		t.Errorf("the System page highlights %d fallbacks, want 1 (face_landmark asked for gpu)", s.Fallbacks)
	}
	if !strings.Contains(s.Version, "version") {
		t.Errorf("the version is not shown: %q", s.Version)
	}
	b.viewport(1280, 1600)
	b.screenshot("console-system.png")
	b.checkClean(kioskState{CSP: s.CSP})
}
