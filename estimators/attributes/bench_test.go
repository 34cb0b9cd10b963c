package attributes_test

import (
	"context"
	"fmt"
	"testing"

	"imageapid/internal/testenv"
	"imageapid/models"
)

// BenchmarkNetworks measures one invocation of each network the attribute
// services can use (inputs zero-filled: the cost does not depend on them),
// against the detector's short-range BlazeFace as the baseline, with
// interpreters on one thread and on two.
func BenchmarkNetworks(b *testing.B) {
	for _, threads := range []int{1, 2} {
		rt := testenv.RuntimeWith(b, models.Options{Threads: threads, Pool: 1})
		for _, name := range []string{"face_detection_short_range", "mobilefacenet", "human_mobilefacenet", "mobileface",
			"emotion", "gender", "age", "faceres", "faceapi_age_gender", "gear", "antispoof", "liveness", "head_emotion"} {
			model, err := rt.Model(name)
			if err != nil {
				b.Logf("%s: %v", name, err)
				continue
			}
			label := name
			if name == "face_detection_short_range" {
				label = "baseline=" + name
			}
			b.Run(fmt.Sprintf("threads=%d/%s", threads, label), func(b *testing.B) { invokeLoop(b, model) })
			if name == "mobilefacenet" { // shipped at batch 2; the template extractor runs it at 1
				one, err := rt.ModelWithBatch(name, 1)
				if err != nil {
					b.Fatal(err)
				}
				b.Run(fmt.Sprintf("threads=%d/%s@batch=1", threads, name), func(b *testing.B) { invokeLoop(b, one) })
			}
		}
	}
}

func invokeLoop(b *testing.B, model *models.Model) {
	for b.Loop() {
		if err := model.Run(context.Background(), func(it *models.Interpreter) error { return it.Invoke() }); err != nil {
			b.Fatal(err)
		}
	}
}
