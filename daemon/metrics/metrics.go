// Package metrics owns the daemon's Prometheus metrics: one registry per
// process (no global default registry), the collectors other parts feed, and
// the /metrics handler.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
