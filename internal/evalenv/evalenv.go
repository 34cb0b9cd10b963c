// Package evalenv opens what the evaluation and calibration commands run
// on: the models of a manifest (XNNPACK, one interpreter of one thread
// each, so that runs repeat) and the daemon's default face pipeline.
package evalenv

import (
	"log/slog"
	"os"

	"imageapid/estimators/face"
	"imageapid/models"
)

// Open loads the manifest at manifestPath with the model files of dir;
// warnings go to stderr. The caller closes the runtime.
func Open(manifestPath, dir string) (*models.Runtime, *face.Pipeline, error) {
	m, err := models.LoadManifest(manifestPath)
	if err != nil {
		return nil, nil, err
	}
	rt, err := models.NewRuntime(m, models.Options{Dir: dir, Delegate: models.DelegateXNNPACK, Threads: 1, Pool: 1},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, nil, err
	}
	p, err := face.New(rt, face.Config{})
	if err != nil {
		rt.Close()
		return nil, nil, err
	}
	return rt, p, nil
}
