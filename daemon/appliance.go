package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"imageapid/camera"
	"imageapid/daemon/broker"
	"imageapid/daemon/config"
	"imageapid/daemon/mqtt"
	"imageapid/estimators/face"
	"imageapid/ui"
)

// appliance is the camera side of the daemon: the embedded broker (unless an
// external one is configured), the MQTT publisher with its outbox, and the
// cameras whose events it publishes.
type appliance struct {
	log     *slog.Logger
	broker  *broker.Broker
	pub     *mqtt.Publisher
	cameras *camera.Manager
	builder *analysisBuilder
	counts  *trackCounts
	// events and inView feed the web console from the event sink.
	events *ui.EventHub
	inView *ui.InView
	// announced remembers who each live track was announced as; names
	// gives the previews the same names.
	announced *announced
	names     *ui.TrackNames
}

func startAppliance(ctx context.Context, cfg config.Config, a *app, log *slog.Logger) (*appliance, error) {
	camFaces, err := face.New(a.runtime, cameraFaceConfig(cfg.Face))
	if err != nil {
		return nil, fmt.Errorf("camera face pipeline: %w", err)
	}
	ap := &appliance{log: log, builder: newAnalysisBuilder(camFaces, a.estimators), counts: newTrackCounts(),
		events: ui.NewEventHub(ui.EventOptions{}), inView: ui.NewInView(10*time.Minute, 5*time.Second),
		announced: newAnnounced(), names: ui.NewTrackNames(1024)}
	ap.builder.lists = a.lists
	if cfg.MQTT.Enabled {
		url := cfg.MQTT.URL
		if url == "" {
			b, err := broker.Start(cfg.MQTT.EmbeddedListen, log.With("component", "broker"))
			if err != nil {
				return nil, fmt.Errorf("embedded MQTT broker: %w", err)
			}
			ap.broker, url = b, b.URL()
		}
		pub, err := mqtt.New(ctx, mqtt.Options{
			URL:              url,
			Username:         cfg.MQTT.Username,
			Password:         cfg.MQTT.Password,
			CAFile:           cfg.MQTT.CAFile,
			CertFile:         cfg.MQTT.CertFile,
			KeyFile:          cfg.MQTT.KeyFile,
			ClientID:         cfg.MQTT.ClientID,
			DeviceID:         cfg.DeviceID,
			Prefix:           cfg.MQTT.Prefix,
			DiscoveryPrefix:  cfg.MQTT.DiscoveryPrefix,
			OutboxDir:        filepath.Join(cfg.ResolvedStateDir(), "outbox"),
			OutboxMaxBytes:   cfg.MQTT.OutboxMaxBytes,
			OutboxMaxEntries: cfg.MQTT.OutboxMaxEntries,
			Logger:           log.With("component", "mqtt"),
		})
		if err != nil {
			ap.closeBroker()
			return nil, fmt.Errorf("MQTT publisher: %w", err)
		}
		ap.pub = pub
		if err := pub.PublishLivenessDiscovery(); err != nil {
			log.Warn("mqtt: liveness sensor discovery", "err", err)
		}
	}
	m, err := camera.NewManager(camera.ManagerOptions{
		Build:   ap.builder.build,
		Sink:    camera.SinkFunc(ap.publishEvent),
		OnState: ap.publishState,
		Logger:  log.With("component", "camera"),
	})
	if err != nil {
		ap.close(context.Background())
		return nil, err
	}
	ap.cameras = m
	if err := ap.apply(ctx, cfg.Cameras); err != nil {
		ap.close(context.Background())
		return nil, err
	}
	return ap, nil
}

// apply makes the running cameras those of cfgs (at start and on reload).
func (ap *appliance) apply(ctx context.Context, cfgs []camera.Config) error {
	for _, c := range cfgs {
		if err := ap.builder.check(c); err != nil {
			return err
		}
	}
	if err := ap.cameras.Apply(ctx, cfgs); err != nil {
		return fmt.Errorf("cameras: %w", err)
	}
	for _, c := range cfgs {
		ap.inView.Set(c.ID, ap.counts.get(c.ID, camera.ClassFace), ap.counts.get(c.ID, camera.ClassBody), time.Now())
	}
	if ap.pub == nil {
		return nil
	}
	infos := make([]mqtt.CameraInfo, len(cfgs))
	for i, c := range cfgs {
		infos[i] = mqtt.CameraInfo{ID: c.ID, Name: c.Name}
		for _, z := range c.Zones {
			infos[i].Zones = append(infos[i].Zones, z.Name)
		}
		for _, l := range c.Lines {
			infos[i].Lines = append(infos[i].Lines, l.Name)
		}
		if c.Identify.List != "" {
			if err := ap.pub.PublishIdentityDiscovery(infos[i]); err != nil {
				return err
			}
		}
		ap.pub.UpdateCounts(c.ID, ap.counts.get(c.ID, camera.ClassFace), ap.counts.get(c.ID, camera.ClassBody))
	}
	return ap.pub.PublishDiscovery(infos)
}

// publishEvent is the cameras' event sink: the event goes to the outbox
// (fsync'd), then to the web console's streams with the same JSON, and the
// camera's face and people counts follow it. Without MQTT the console gets
// the camera's event as it is (no event_id, no device_id).
func (ap *appliance) publishEvent(_ context.Context, e camera.Event) error {
	faces, people := ap.counts.track(e)
	ap.nameTrack(e)
	ap.inView.Set(e.CameraID, faces, people, time.Now())
	if ap.pub == nil {
		payload, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("event: %w", err)
		}
		ap.events.Publish(e.CameraID, string(e.Type), payload)
		return nil
	}
	payload, err := ap.pub.PublishEventPayload(e)
	if err != nil {
		return err
	}
	ap.events.Publish(e.CameraID, string(e.Type), payload)
	if err := ap.publishIdentity(e); err != nil {
		return err
	}
	return ap.pub.UpdateCounts(e.CameraID, faces, people)
}

func (ap *appliance) publishState(st camera.State) {
	if ap.pub == nil {
		return
	}
	err := ap.pub.PublishCameraState(st.CameraID, mqtt.CameraState{
		Connected:     st.Connected,
		FPS:           st.FPS,
		DroppedFrames: st.FramesDropped,
		LastError:     st.LastError,
	})
	if err != nil {
		ap.log.Warn("publish camera state", "camera", st.CameraID, "err", err)
	}
	if len(st.Zones)+len(st.Lines) == 0 {
		return
	}
	lines := make(map[string]mqtt.LineCount, len(st.Lines))
	for name, n := range st.Lines {
		lines[name] = mqtt.LineCount(n)
	}
	if err := ap.pub.UpdatePlaces(st.CameraID, st.Zones, lines); err != nil {
		ap.log.Warn("publish zone counts", "camera", st.CameraID, "err", err)
	}
}

// serveCameras answers GET /cameras with every camera's state.
func (ap *appliance) serveCameras(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		w.Write([]byte(`{"detail":"Method Not Allowed"}`))
		return
	}
	b, _ := json.Marshal(map[string]any{"cameras": ap.cameras.States()})
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// stalled reports a camera pipeline that has made no progress for too long.
func (ap *appliance) stalled(limit time.Duration) error {
	if since := time.Since(ap.cameras.LastProgress()); since > limit {
		return fmt.Errorf("a camera pipeline made no progress for %v", since.Round(time.Second))
	}
	return nil
}

// close stops the cameras (flushing their events into the outbox), then the
// publisher (delivering what it can before ctx ends), then the broker.
func (ap *appliance) close(ctx context.Context) error {
	var errs []error
	if ap.cameras != nil {
		cctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		errs = append(errs, ap.cameras.Close(cctx))
		cancel()
	}
	if ap.pub != nil {
		errs = append(errs, ap.pub.Close(ctx))
	}
	ap.closeBroker()
	return errors.Join(errs...)
}

func (ap *appliance) closeBroker() {
	if ap.broker != nil {
		ap.broker.Close()
	}
}

// trackCounts follows track_new and track_end events to know how many faces
// and people each camera sees now.
type trackCounts struct {
	mu     sync.Mutex
	active map[string]map[string]int // camera -> class -> open tracks
}

func newTrackCounts() *trackCounts { return &trackCounts{active: map[string]map[string]int{}} }

func (t *trackCounts) track(e camera.Event) (faces, people int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	byClass := t.active[e.CameraID]
	if byClass == nil {
		byClass = map[string]int{}
		t.active[e.CameraID] = byClass
	}
	switch e.Type {
	case camera.TrackNew:
		byClass[e.Class]++
	case camera.TrackEnd:
		byClass[e.Class] = max(0, byClass[e.Class]-1)
	}
	return byClass[camera.ClassFace], byClass[camera.ClassBody]
}

func (t *trackCounts) get(cam, class string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active[cam][class]
}
