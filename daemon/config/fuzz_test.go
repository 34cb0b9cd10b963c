package config

import (
	"strings"
	"testing"
)

// FuzzParse loads arbitrary YAML: no crash (yaml.v3 on hostile input
// included), and a config it accepts passes its own checks again.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "http:\n  listen: 127.0.0.1:8080\n  max_queue: 4\n  queue_timeout: 2s\n",
		"http:\n  listen: 0.0.0.0:8080\n  auth:\n    tokens:\n      - sha256: " + strings.Repeat("ab", 32) + "\n        scopes: [api, admin]\n    public: [/metrics]\n",
		"http:\n  auth:\n    tokens: [{sha256: zz, scopes: [root]}]\n",
		"http:\n  lisen: 1\n", "models:\n  delegate: tpu\n", "log_level: loud\n",
		"cameras:\n  - id: a\n    url: x.avi\n  - id: a\n    url: y.avi\n",
		"mqtt:\n  enabled: true\n  embedded_listen: nowhere\n",
		"estimators:\n  face-detector: {min_score: 0.3}\n", "a: &a [*a, *a]\n", "http: [1, 2\n",
		"sessions:\n  max_frame_bytes: 1\n", "http:\n  max_inflight_bytes: 10\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse(b, "fuzz.yaml")
		if err != nil {
			return
		}
		if err := cfg.Check(); err != nil {
			t.Fatalf("an accepted config fails its checks: %v", err)
		}
	})
}
