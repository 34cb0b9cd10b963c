// Package metrics owns the daemon's Prometheus metrics: one registry per
// process (no global default registry), the collectors other parts feed, and
// the /metrics handler.
package metrics

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metrics holds the registry and the collectors.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	inference *prometheus.HistogramVec
	modelInfo *prometheus.GaugeVec
}

// New registers the daemon's collectors and the Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imageapid_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imageapid_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"route"}),
		inference: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imageapid_inference_seconds",
			Help:    "Time of one TFLite inference by model.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}, []string{"model"}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "imageapid_model_delegate",
			Help: "1 for the delegate each loaded model actually runs on.",
		}, []string{"model", "delegate"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.inference, m.modelInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveRequest counts one HTTP request.
func (m *Metrics) ObserveRequest(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// ObserveInference records one model invocation.
func (m *Metrics) ObserveInference(model string, d time.Duration) {
	m.inference.WithLabelValues(model).Observe(d.Seconds())
}

// SetModels publishes which delegate each model runs on.
func (m *Metrics) SetModels(delegates map[string]string) {
	m.modelInfo.Reset()
	for model, d := range delegates {
		m.modelInfo.WithLabelValues(model, d).Set(1)
	}
}

// Register adds collectors owned by other parts (cameras, MQTT).
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Route is one HTTP route's counters since start. P50 and P95 are the
// upper bounds of the latency buckets holding those quantiles.
type Route struct {
	Route                      string
	Requests                   uint64
	ClientErrors, ServerErrors uint64
	Mean, P50, P95             time.Duration
}

// Routes reads the request counters and latency histograms, busiest route first.
func (m *Metrics) Routes() []Route {
	byRoute := map[string]*Route{}
	get := func(route string) *Route {
		r := byRoute[route]
		if r == nil {
			r = &Route{Route: route}
			byRoute[route] = r
		}
		return r
	}
	for _, mt := range collect(m.requests) {
		r := get(label(mt, "route"))
		n := uint64(mt.GetCounter().GetValue())
		r.Requests += n
		switch code := label(mt, "code"); {
		case strings.HasPrefix(code, "4"):
			r.ClientErrors += n
		case strings.HasPrefix(code, "5"):
			r.ServerErrors += n
		}
	}
	for _, mt := range collect(m.latency) {
		h := mt.GetHistogram()
		r := get(label(mt, "route"))
		if c := h.GetSampleCount(); c > 0 {
			r.Mean = seconds(h.GetSampleSum() / float64(c))
		}
		r.P50, r.P95 = seconds(quantile(h, 0.5)), seconds(quantile(h, 0.95))
	}
	out := make([]Route, 0, len(byRoute))
	for _, r := range byRoute {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		return out[i].Route < out[j].Route
	})
	return out
}

// Inference is one model's invocations since start.
type Inference struct {
	Count uint64
	Mean  time.Duration
}

// Inferences reads the inference histograms by model.
func (m *Metrics) Inferences() map[string]Inference {
	out := map[string]Inference{}
	for _, mt := range collect(m.inference) {
		h := mt.GetHistogram()
		inf := Inference{Count: h.GetSampleCount()}
		if inf.Count > 0 {
			inf.Mean = seconds(h.GetSampleSum() / float64(inf.Count))
		}
		out[label(mt, "model")] = inf
	}
	return out
}

func collect(c prometheus.Collector) []*dto.Metric {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var out []*dto.Metric
	for pm := range ch {
		var mt dto.Metric
		if pm.Write(&mt) == nil {
			out = append(out, &mt)
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// quantile is the upper bound of the histogram bucket holding the q-th
// quantile: a bound the quantile is known to be under, where interpolating
// inside a wide bucket would invent a figure; 0 without samples, the
// largest finite bound when the quantile lies past it.
func quantile(h *dto.Histogram, q float64) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return 0
	}
	rank, last := q*total, 0.0
	for _, b := range h.GetBucket() {
		if float64(b.GetCumulativeCount()) >= rank {
			return b.GetUpperBound()
		}
		last = b.GetUpperBound()
	}
	return last
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
