package main

// A real-browser test of the watchlist page (ui/static/watchlists):
// Debian's chromium, headless, launched like the kiosk tests
// (newKioskBrowser: every request off the loopback is blocked and
// recorded), against the daemon with watchlists enabled in a temporary
// state directory. Photos are uploaded through the page's file inputs.

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"imageapid/internal/testenv"
	"imageapid/ui"
)

type watchlistRow struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Faces   string `json:"faces"`
	Quality string `json:"quality"`
}

// watchlistPageState is what the test reads from the page.
type watchlistPageState struct {
	State      string         `json:"state"`
	List       string         `json:"list"`
	Summary    string         `json:"summary"`
	Rows       []watchlistRow `json:"rows"`
	AddStatus  string         `json:"add_status"`
	AddKind    string         `json:"add_kind"`
	ListStatus string         `json:"list_status"`
	Empty      bool           `json:"empty"`
	Dialog     bool           `json:"dialog"`
	DialogText string         `json:"dialog_text"`
	CSP        []string       `json:"csp"`
}

const watchlistStateJS = `(() => {
  const $ = (id) => document.getElementById(id);
  if (!$("persons")) return {state: "not the watchlist page"};
  return {
    state: document.body.dataset.state || "",
    list: $("list").value,
    summary: $("summary").textContent,
    rows: [...document.querySelectorAll("#persons tr")].map((tr) => ({
      id: tr.dataset.person, name: tr.querySelector(".p-name").textContent,
      faces: tr.querySelector(".p-faces").textContent, quality: tr.querySelector(".p-quality").textContent,
    })),
    add_status: $("add-status").textContent,
    add_kind: $("add-status").dataset.kind || "",
    list_status: $("list-status").textContent,
    empty: !$("persons-empty").hidden && $("persons-table").hidden,
    dialog: $("confirm").open,
    dialog_text: $("confirm-text").textContent,
    csp: window.__kiosk ? window.__kiosk.csp : [],
  };
})()`

func (b *kioskBrowser) watchlistPage() watchlistPageState {
	b.t.Helper()
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](watchlistStateJS))
	if err != nil {
		b.t.Fatalf("read the watchlist page: %v", err)
	}
	var s watchlistPageState
	if err := json.Unmarshal(raw, &s); err != nil {
		b.t.Fatalf("watchlist page state %s: %v", raw, err)
	}
	return s
}

func (b *kioskBrowser) waitWatchlistPage(what string, ok func(watchlistPageState) bool) watchlistPageState {
	b.t.Helper()
	const timeout = 30 * time.Second
	deadline := time.Now().Add(timeout)
	for {
		s := b.watchlistPage()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waited %v for %s; page: %+v; JavaScript errors %v", timeout, what, s, b.jsErrors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *kioskBrowser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// TestWatchlistPageInBrowser follows the console's link to the watchlist
// page, adds a person from a photo of one face (listed with one face and its
// quality figures), is refused a photo of a cat with the API's reason (and
// no person is left behind), adds a second photo to the person, and deletes
// them through the confirm dialog, leaving the list empty; the API agrees at
// each step. The page asks for nothing off the loopback, breaks no CSP rule
// and throws no exception.
func TestWatchlistPageInBrowser(t *testing.T) {
	needChromium(t)
	cfg := testConfig(t)
	cfg.Watchlist.Enabled = true
	astronaut := testenv.Fixture(t, "astronaut.png") // one face
	cat := testenv.Fixture(t, "chelsea.png")         // no face
	addr, stop := startDaemon(t, cfg)
	defer stop()
	base := "http://" + addr
	waitReady(t, base)
	apiPersons := func() []struct{ ID, Name string } {
		var body struct{ Persons []struct{ ID, Name string } }
		getJSON(t, base+"/v1/watchlists/default/persons", &body)
		return body.Persons
	}

	b := newKioskBrowser(t, "")
	b.viewport(1280, 800)
	b.open(base + "/")
	b.run("the console's watchlist link", chromedp.WaitVisible(chromedp.ID("link-watchlists")))
	b.run("follow the link", chromedp.Click(chromedp.ID("link-watchlists")))
	s := b.waitWatchlistPage("the page, ready", func(s watchlistPageState) bool { return s.State == "ready" })
	if s.List != "default" || !s.Empty || !strings.Contains(s.Summary, "new list") {
		t.Errorf("a fresh daemon's page: list %q, empty %v, summary %q; want the new list default, empty", s.List, s.Empty, s.Summary)
	}

	b.run("add Eileen", chromedp.SetValue(chromedp.ID("add-name"), "Eileen <b>Collins</b>"),
		chromedp.SetUploadFiles(chromedp.ID("add-photo"), []string{astronaut}),
		chromedp.Click(chromedp.ID("add-submit")))
	s = b.waitWatchlistPage("Eileen listed with one face", func(s watchlistPageState) bool {
		return s.AddKind == "ok" && len(s.Rows) == 1 && s.Rows[0].Faces == "1"
	})
	eileen := s.Rows[0]
	if eileen.Name != "Eileen <b>Collins</b>" { // text, never markup
		t.Errorf("the person is listed as %q", eileen.Name)
	}
	if !strings.Contains(eileen.Quality, "sharpness") || !strings.Contains(eileen.Quality, "eyes") {
		t.Errorf("the face's quality is shown as %q", eileen.Quality)
	}
	if !strings.Contains(s.Summary, "Persons1") || !strings.Contains(s.Summary, "Faces1") {
		t.Errorf("the list summary after one enrolment: %q", s.Summary)
	}
	if p := apiPersons(); len(p) != 1 || p[0].ID != eileen.ID {
		t.Fatalf("the API lists %+v, want Eileen (%s)", p, eileen.ID)
	}

	b.run("add the cat", chromedp.SetValue(chromedp.ID("add-name"), "Chelsea"),
		chromedp.SetUploadFiles(chromedp.ID("add-photo"), []string{cat}),
		chromedp.Click(chromedp.ID("add-submit")))
	s = b.waitWatchlistPage("the cat refused", func(s watchlistPageState) bool { return s.AddKind == "error" })
	if !strings.Contains(s.AddStatus, "no face found in the image") || !strings.Contains(s.AddStatus, "Chelsea was not added") {
		t.Errorf("the refusal reads %q", s.AddStatus)
	}
	if len(s.Rows) != 1 || len(apiPersons()) != 1 {
		t.Errorf("after the refused photo the page lists %d persons and the API %d, want 1", len(s.Rows), len(apiPersons()))
	}
	b.screenshot("watchlists.png")

	b.run("a second photo of Eileen", chromedp.SetUploadFiles(chromedp.CSS(`#persons tr[data-person="`+eileen.ID+`"] .p-photo`), []string{astronaut}))
	b.waitWatchlistPage("Eileen with two faces", func(s watchlistPageState) bool {
		return len(s.Rows) == 1 && s.Rows[0].Faces == "2" && strings.Contains(s.ListStatus, "Added a face")
	})

	b.run("ask to delete Eileen", chromedp.Click(chromedp.CSS(`#persons tr[data-person="`+eileen.ID+`"] .p-delete`)))
	s = b.waitWatchlistPage("the confirm dialog", func(s watchlistPageState) bool { return s.Dialog })
	if !strings.Contains(s.DialogText, "2 face templates") {
		t.Errorf("the confirm dialog says %q", s.DialogText)
	}
	b.screenshot("watchlists-confirm.png")
	b.run("cancel", chromedp.Click(chromedp.ID("confirm-cancel")))
	s = b.waitWatchlistPage("the dialog closed", func(s watchlistPageState) bool { return !s.Dialog })
	if len(s.Rows) != 1 || len(apiPersons()) != 1 {
		t.Fatalf("cancelling deleted the person")
	}
	b.run("delete Eileen", chromedp.Click(chromedp.CSS(`#persons tr[data-person="`+eileen.ID+`"] .p-delete`)))
	b.waitWatchlistPage("the confirm dialog", func(s watchlistPageState) bool { return s.Dialog })
	b.run("confirm", chromedp.Click(chromedp.ID("confirm-delete")))
	s = b.waitWatchlistPage("the list empty", func(s watchlistPageState) bool {
		return !s.Dialog && s.Empty && len(s.Rows) == 0 && strings.Contains(s.ListStatus, "Deleted")
	})
	if p := apiPersons(); len(p) != 0 {
		t.Errorf("the API still lists %+v", p)
	}
	b.screenshot("watchlists-empty.png")
	b.checkClean(kioskState{CSP: s.CSP})
}

// TestWatchlistPageDisabled checks the page is a 404 (which hides the
// console's link) while watchlists are disabled, and served while enabled.
func TestWatchlistPageDisabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		cfg := testConfig(t)
		cfg.Watchlist.Enabled = enabled
		addr, stop := startDaemon(t, cfg)
		waitReady(t, "http://"+addr)
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			req, _ := http.NewRequest(method, "http://"+addr+"/watchlists", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case !enabled && (resp.StatusCode != http.StatusNotFound || method == http.MethodGet && !strings.Contains(string(b), "watchlists are disabled")):
				t.Errorf("%s /watchlists, watchlists disabled: %d %s", method, resp.StatusCode, b)
			case enabled && (resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != ui.CSP):
				t.Errorf("%s /watchlists, watchlists enabled: %d, CSP %q", method, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
			}
		}
		stop()
	}
}
