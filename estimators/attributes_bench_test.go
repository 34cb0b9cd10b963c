package estimators_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/internal/testenv"
	"imageapid/models"
)

// BenchmarkAttributes measures per face, on a 640x480 portrait, in one run:
// the face fitter alone (the baseline: detection and mesh, which every
// face service pays once per request), the attribute set (age, gender,
// emotion and mask on one sample, sharing detection, mesh and features as
// a client chaining them on one frame would), each liveness algorithm and
// quality assessment; with interpreters on one thread and on two. Each
// iteration is a fresh sample: nothing is cached across iterations.
func BenchmarkAttributes(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) { benchAttributes(b, threads) })
	}
}

func benchAttributes(b *testing.B, threads int) {
	ctx := context.Background()
	rt := testenv.RuntimeWith(b, models.Options{Threads: threads, Pool: 1})
	faces, err := face.New(rt, face.Config{GeometryFile: filepath.Join(testenv.Root(b), "models", "build", "face_geometry.binarypb")})
	if err != nil {
		b.Fatal(err)
	}
	deps := estimators.Deps{Models: rt, Faces: faces, Log: slog.New(slog.DiscardHandler)}
	byName := map[string]estimators.Estimator{}
	// get builds a service on first use; a service whose models are not
	// built skips its sub-benchmark.
	get := func(b *testing.B, name string) estimators.Estimator {
		if e, ok := byName[name]; ok {
			return e
		}
		ests, err := estimators.Build(deps, []string{name})
		if err != nil {
			b.Skipf("%v", err)
		}
		byName[name] = ests[0]
		return ests[0]
	}
	portrait := frame640(b, "astronaut.png")
	run := func(b *testing.B, names ...string) {
		for _, n := range names {
			get(b, n)
		}
		for b.Loop() {
			s := estimators.NewSample(nil, portrait.Clone(), nil)
			for _, n := range names {
				if err := byName[n].Process(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
			if len(s.Objects) != 1 {
				b.Fatalf("%d objects", len(s.Objects))
			}
			s.Close()
		}
	}
	b.Run("baseline=face-fitter", func(b *testing.B) { run(b, "face-detector-face-fitter") })
	b.Run("attribute-set", func(b *testing.B) {
		run(b, "face-detector-face-fitter", "age-estimator", "gender-estimator", "emotion-estimator", "mask-estimator")
	})
	b.Run("liveness-estimator", func(b *testing.B) { run(b, "face-detector-liveness-estimator") })
	b.Run("liveness-anti-spoofing", func(b *testing.B) { run(b, "face-detector-face-fitter", "liveness-anti-spoofing") })
	b.Run("quality-assessment", func(b *testing.B) { run(b, "face-detector-face-fitter", "quality-assessment-estimator") })
	b.Run("quality-liveness", func(b *testing.B) { run(b, "quality-liveness-anti-spoofing") })
}
