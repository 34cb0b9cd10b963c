package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"imageapid/camera"
	"imageapid/daemon/mqtt"
)

// Appliance exports camera and MQTT counters, read at scrape time from the
// functions given (either may be nil).
type Appliance struct {
	Cameras func() []camera.Stats
	MQTT    func() mqtt.Stats
}

var (
	descFrames = prometheus.NewDesc("imageapid_camera_frames_total",
		"Frames per camera by what happened to them: captured, analyzed, dropped (replaced by a newer one before analysis), skipped (over the frame-rate cap).",
		[]string{"camera", "outcome"}, nil)
	descReconnects = prometheus.NewDesc("imageapid_camera_reconnects_total", "Times a camera's source was reopened.", []string{"camera"}, nil)
	descCamInf     = prometheus.NewDesc("imageapid_camera_inference_seconds_total", "Time spent in detectors per camera.", []string{"camera"}, nil)
	descEvents     = prometheus.NewDesc("imageapid_camera_events_total", "Events per camera by outcome: sent to the sink, failed, dropped.", []string{"camera", "outcome"}, nil)
	descTracks     = prometheus.NewDesc("imageapid_camera_active_tracks", "Confirmed tracks alive now.", []string{"camera"}, nil)
	descFPS        = prometheus.NewDesc("imageapid_camera_fps", "Frames per second, smoothed.", []string{"camera", "stage"}, nil)
	descQueue      = prometheus.NewDesc("imageapid_mqtt_queue_depth", "Events waiting in the MQTT outbox.", nil, nil)
	descQueueBytes = prometheus.NewDesc("imageapid_mqtt_queue_bytes", "Size of the undelivered events on disk.", nil, nil)
	descDelivered  = prometheus.NewDesc("imageapid_mqtt_delivered_total", "Events acknowledged by the broker.", nil, nil)
	descDropped    = prometheus.NewDesc("imageapid_mqtt_dropped_total", "Events dropped: the outbox was full, or the disk refused them.", nil, nil)
	descConnected  = prometheus.NewDesc("imageapid_mqtt_connected", "1 while a broker session is up.", nil, nil)
)

// Describe implements prometheus.Collector.
func (a Appliance) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFrames, descReconnects, descCamInf, descEvents, descTracks, descFPS,
		descQueue, descQueueBytes, descDelivered, descDropped, descConnected} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (a Appliance) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if a.Cameras != nil {
		for _, s := range a.Cameras() {
			id := s.CameraID
			counter(descFrames, float64(s.FramesCaptured), id, "captured")
			counter(descFrames, float64(s.FramesAnalyzed), id, "analyzed")
			counter(descFrames, float64(s.FramesDropped), id, "dropped")
			counter(descFrames, float64(s.FramesSkipped), id, "skipped")
			counter(descReconnects, float64(s.Reconnects), id)
			counter(descCamInf, s.InferenceTotal.Seconds(), id)
			counter(descEvents, float64(s.EventsSent), id, "sent")
			counter(descEvents, float64(s.EventsFailed), id, "failed")
			counter(descEvents, float64(s.EventsDropped), id, "dropped")
			gauge(descTracks, float64(s.ActiveTracks), id)
			gauge(descFPS, s.CaptureFPS, id, "capture")
			gauge(descFPS, s.AnalysisFPS, id, "analysis")
		}
	}
	if a.MQTT != nil {
		s := a.MQTT()
		gauge(descQueue, float64(s.QueueDepth))
		gauge(descQueueBytes, float64(s.QueueBytes))
		counter(descDelivered, float64(s.Delivered))
		counter(descDropped, float64(s.Dropped))
		connected := 0.0
		if s.Connected {
			connected = 1
		}
		gauge(descConnected, connected)
	}
}
