package main

import (
	"context"
	"fmt"

	"imageapid/camera"
	"imageapid/daemon/config"
	"imageapid/daemon/mqtt"
	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/models"
	"imageapid/sessions"
)

// loadSessionAnalyzer builds the kiosk sessions' analyzer with the
// template network the template extractor is configured with, so that a
// session's reference template is one the extractor makes.
func loadSessionAnalyzer(cfg config.Config, rt *models.Runtime, faces *face.Pipeline) (*sessions.Analyzer, error) {
	set := estimators.TemplateSettings{Network: facetemplate.DefaultNetwork}
	if err := cfg.EstimatorSettings("face-detector-template-extractor", &set); err != nil {
		return nil, fmt.Errorf("sessions: template settings: %w", err)
	}
	return sessions.LoadAnalyzer(rt, faces, set.Network, set.Flip)
}

// livenessSink publishes each finished session on MQTT (when enabled).
type livenessSink struct{ pub *mqtt.Publisher }

func (l livenessSink) SessionFinished(_ context.Context, f sessions.Finished) error {
	if l.pub == nil {
		return nil
	}
	sum := mqtt.LivenessSummary{SessionID: f.ID, Status: string(f.Status), Finished: f.Finished}
	if f.Result != nil {
		sum.Value, sum.Reason = f.Result.Liveness.Value, f.Result.Reason
	}
	return l.pub.PublishLiveness(f.ID, f, sum)
}

// Subscribe hands a running camera's analysed frames to a kiosk session or
// a preview.
func (ap *appliance) Subscribe(cameraID string, maxFPS float64) (*camera.Subscription, error) {
	c, ok := ap.cameras.Camera(cameraID)
	if !ok {
		return nil, fmt.Errorf("no camera %q", cameraID)
	}
	return c.Subscribe(maxFPS)
}
