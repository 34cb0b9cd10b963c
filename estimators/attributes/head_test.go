package attributes_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"imageapid/estimators/attributes"
	"imageapid/internal/testenv"
	"imageapid/models"
)

// A head's TFLite form is deterministic.
func TestHeadTFLiteDeterministic(t *testing.T) {
	for _, name := range []string{"mask", "gender", "age", "emotion", "liveness_texture", "liveness_deep", "liveness_session"} {
		h, err := attributes.LoadHead(name)
		if err != nil {
			t.Fatal(err)
		}
		a, err := h.TFLite()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := h.TFLite()
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two TFLite encodings differ", name)
		}
	}
}

func manifest(t *testing.T) *models.Manifest {
	m, err := models.LoadManifest(filepath.Join(testenv.Root(t), "models", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Every committed head was fitted on the networks the manifest ships now:
// a network rebuilt since (new weights, new int8 calibration) changes the
// features, and its heads must be re-fitted with `make train`.
func TestHeadsMatchNetworks(t *testing.T) {
	m := manifest(t)
	for _, name := range []string{"mask", "gender", "age", "emotion", "liveness_texture", "liveness_deep", "liveness_session"} {
		h, err := attributes.LoadHead(name)
		if err != nil {
			t.Fatal(err)
		}
		if stale := h.Stale(m); len(stale) > 0 {
			t.Errorf("head %s was fitted on other builds of %v: run `make train`", name, stale)
		}
		for _, part := range strings.Split(h.Features, "+") {
			for _, n := range attributes.PartNetworks[part] {
				if _, ok := h.Networks[n]; !ok {
					t.Errorf("head %s does not record the network %s it reads", name, n)
				}
			}
		}
	}
}
