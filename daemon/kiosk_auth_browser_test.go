package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"imageapid/daemon/auth"
)

// TestKioskPageWithTokens runs the kiosk page in Chromium against a daemon
// that requires tokens: opened as /kiosk?token=<api token>, the page loads
// its script and styles by the cookie that visit set, creates its session
// with the api token, and posts its frames with the session's own token,
// which the daemon accepts (the guidance comes back).
func TestKioskPageWithTokens(t *testing.T) {
	needChromium(t)
	const apiToken = "kiosk-page-api-0123456789"
	cfg := testConfig(t)
	cfg.MQTT.Enabled = false
	cfg.HTTP.Auth.Tokens = []auth.HashedToken{{SHA256: sha(apiToken), Scopes: []string{"api"}}}
	addr, stop := startDaemon(t, cfg)
	defer stop()
	b := newKioskBrowser(t, "")
	b.viewport(1280, 800)
	b.open("http://" + addr + "/kiosk?challenges=blink&timeout_s=30&reset_s=0&token=" + apiToken)
	s := b.waitFor("a running session", 30*time.Second, func(s kioskState) bool {
		return s.Phase == "running" && s.Code != "starting" || s.Phase == "error"
	})
	if s.Phase != "running" || s.Session == "" {
		t.Fatalf("the page did not start a session with tokens on: %+v", s)
	}
	before := b.frameCount()
	b.waitFor("guidance for frames posted with the session token", 30*time.Second, func(s kioskState) bool {
		return b.frameCount() >= before+3 && slices.ContainsFunc(s.Codes, func(c shownCode) bool { return c.Code == "no_face" })
	})
	b.mu.Lock()
	headers := slices.Clone(b.auth)
	b.mu.Unlock()
	var page, session int
	for _, h := range headers {
		switch {
		case h == "Bearer "+apiToken:
			page++
		case strings.HasPrefix(h, "Bearer st1."+s.Session+"."):
			session++
		default:
			t.Errorf("unexpected Authorization header %q", h)
		}
	}
	if page != 1 || session < 3 {
		t.Errorf("want the page's token once (to create the session) and the session's token on its frames: %d and %d", page, session)
	}
	b.checkClean(b.state())
}
