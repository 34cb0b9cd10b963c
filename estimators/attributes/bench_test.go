package attributes_test

import (
	"context"
	"testing"

	"imageapid/internal/testenv"
	"imageapid/models"
)

// BenchmarkNetworks measures one invocation of each network the attribute
// services can use (inputs zero-filled: the cost does not depend on them),
// against the detector's short-range BlazeFace as the baseline.
func BenchmarkNetworks(b *testing.B) {
	rt := testenv.Runtime(b, "")
	for _, name := range []string{"face_detection_short_range", "mobilefacenet", "human_mobilefacenet", "mobileface",
		"emotion", "gender", "age", "faceres", "gear", "antispoof", "liveness", "head_emotion"} {
		m, err := rt.Model(name)
		if err != nil {
			b.Logf("%s: %v", name, err)
			continue
		}
		label := name
		if name == "face_detection_short_range" {
			label = "baseline=" + name
		}
		b.Run(label, func(b *testing.B) {
			for b.Loop() {
				if err := m.Run(context.Background(), func(it *models.Interpreter) error { return it.Invoke() }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
