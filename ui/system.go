package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"imageapid/camera"
)

// SystemPath is the console's system page data.
const SystemPath = "/v1/system"

// System is what GET /v1/system reports: the daemon gathers it from the
// model runtime, the MQTT publisher, the metrics and the config.
type System struct {
	Version   string         `json:"version"`
	StartedAt time.Time      `json:"started_at"`
	UptimeS   float64        `json:"uptime_s"`
	Models    []ModelStatus  `json:"models"`
	MQTT      MQTTStatus     `json:"mqtt"`
	HTTP      []RouteStats   `json:"http"`
	Cameras   []camera.State `json:"cameras"`
	// Config is the effective configuration as a tree, secrets masked.
	Config any `json:"config"`
}

// ModelStatus is one model of the manifest and how it runs.
type ModelStatus struct {
	Name      string `json:"name"`
	File      string `json:"file"`
	Precision string `json:"precision"`
	// PrecisionNote says why the shipped precision is not the one asked for.
	PrecisionNote string `json:"precision_note,omitempty"`
	// Loaded is false for a model no service has asked for yet.
	Loaded    bool   `json:"loaded"`
	Requested string `json:"requested,omitempty"`
	Delegate  string `json:"delegate,omitempty"`
	// Fallback is why Requested is not the delegate in use.
	Fallback       string  `json:"fallback,omitempty"`
	Nodes          int     `json:"nodes,omitempty"`
	DelegatedNodes int     `json:"delegated_nodes,omitempty"`
	Inferences     uint64  `json:"inferences"`
	InferenceMeanS float64 `json:"inference_mean_s"`
}

// MQTTStatus is the publisher's state.
type MQTTStatus struct {
	Enabled bool `json:"enabled"`
	// Broker is the broker URL, credentials masked; "embedded" names the
	// daemon's own broker.
	Broker     string `json:"broker,omitempty"`
	Connected  bool   `json:"connected"`
	QueueDepth int    `json:"queue_depth"`
	QueueBytes int64  `json:"queue_bytes"`
	Delivered  uint64 `json:"delivered"`
	Dropped    uint64 `json:"dropped"`
}

// RouteStats are an HTTP route's counters since start.
type RouteStats struct {
	Route        string  `json:"route"`
	Requests     uint64  `json:"requests"`
	ClientErrors uint64  `json:"client_errors"` // 4xx
	ServerErrors uint64  `json:"server_errors"` // 5xx
	MeanS        float64 `json:"mean_s"`
	// P50S and P95S are upper bounds: the latency histogram's bucket
	// bounds under which half and 95% of the requests finished.
	P50S float64 `json:"p50_s"`
	P95S float64 `json:"p95_s"`
}

// SystemHandler serves GET /v1/system from gather, masking the config's
// secrets again on the way out whatever gather did.
func SystemHandler(gather func() (System, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
			return
		}
		s, err := gather()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		s.Config = MaskSecrets(s.Config)
		s.MQTT.Broker = maskString("", s.MQTT.Broker)
		writeJSON(w, s)
	})
}

// ConfigTree turns a YAML-tagged config struct into a tree of maps, lists
// and scalars keyed as in the config file, with its secrets masked.
func ConfigTree(cfg any) (any, error) {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("config tree: %w", err)
	}
	var tree any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return nil, fmt.Errorf("config tree: %w", err)
	}
	return MaskSecrets(tree), nil
}

// Masked replaces a secret's value.
const Masked = "********"

// secretKey reports whether a config key names a secret.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "passwd", "secret", "token", "passphrase", "credential", "api_key", "apikey", "private_key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return k == "key" || k == "pass" || k == "psk"
}

// MaskSecrets returns a copy of a config tree with the values of secret
// keys masked and the passwords and secret query parameters of URLs
// (rtsp://user:pass@host, ?token=...) masked.
func MaskSecrets(v any) any {
	return maskValue("", v)
}

func maskValue(key string, v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = maskValue(k, x)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			ks := fmt.Sprint(k)
			out[ks] = maskValue(ks, x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = maskValue(key, x)
		}
		return out
	case string:
		return maskString(key, t)
	case nil, bool:
		return t
	default:
		if secretKey(key) {
			return Masked
		}
		return t
	}
}

func maskString(key, s string) string {
	if s == "" {
		return s
	}
	if secretKey(key) {
		return Masked
	}
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		// Unparseable but URL-like: hide what could be credentials.
		if at := strings.LastIndex(s, "@"); at >= 0 {
			return Masked + s[at:]
		}
		return s
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if secretKey(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not encode the answer")
		return
	}
	setSecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}
