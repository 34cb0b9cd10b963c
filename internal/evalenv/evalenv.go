// Package evalenv opens what the evaluation, fitting and calibration
// commands run on: the models of a manifest (one interpreter of one thread
// each, so that runs repeat) and, with Open, the daemon's default face
// pipeline.
package evalenv

import (
	"log/slog"
	"os"
	"path/filepath"

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

// Runtime loads modelDir/manifest.json with the model files of
// modelDir/build, one interpreter of one thread each, logging nothing: what
// the fitting and calibration commands run on. The caller closes it.
func Runtime(modelDir string) (*models.Runtime, error) {
	m, err := models.LoadManifest(filepath.Join(modelDir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	return models.NewRuntime(m, models.Options{Dir: filepath.Join(modelDir, "build"), Threads: 1, Pool: 1},
		slog.New(slog.DiscardHandler))
}
