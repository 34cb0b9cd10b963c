package evaluation

import (
	"context"
	"testing"

	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/internal/testenv"
	"imageapid/watchlist"
)

// TestIdentificationOnCorpus enrols the first photo of every second
// identity of ../shared/corpus/identities (a sample, to keep the test near
// a minute; `go run ./watchlist/cmd/identeval` measures all 160) and probes
// with the rest. The floors sit under the sample's measured figures (see
// the README); the targets (rank-1 >= 0.98, FNIR <= 5% at FPIR 1%)
// are not met by the current template network.
func TestIdentificationOnCorpus(t *testing.T) {
	corpus := testenv.Shared(t, "corpus")
	if testing.Short() {
		t.Skip("identification on the corpus takes about a minute; skipped with -short")
	}
	photos, err := CorpusPhotos(corpus, 2)
	if err != nil {
		t.Fatal(err)
	}
	rt := testenv.Runtime(t, "xnnpack")
	p, err := face.New(rt, face.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := facetemplate.NewEmbedder(rt, facetemplate.DefaultNetwork, false)
	if err != nil {
		t.Fatal(err)
	}
	cal, err := facetemplate.LoadCalibration(facetemplate.DefaultNetwork, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := EvalIdentification(context.Background(), photos, watchlist.NewPipelineExtractor(p, e), cal, e.Dim())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r)
	if r.Identities != 80 || r.Enrolled < 78 {
		t.Fatalf("%d identities, %d enrolled; want 80 and nearly all", r.Identities, r.Enrolled)
	}
	if r.Rank1 < rank1Floor {
		t.Errorf("rank-1 %.4f, floor %.2f", r.Rank1, rank1Floor)
	}
	if r.FNIR > fnirCeiling || r.FPIR > 0.01 {
		t.Errorf("FNIR %.4f at FPIR %.4f, ceiling %.2f at 0.01", r.FNIR, r.FPIR, fnirCeiling)
	}
}

// Floors for the sample, under its measured rank-1 0.991 and FNIR 0.024
// at FPIR 0.009 (80 identities, 340 mated probes: one miss moves rank-1 by
// 0.003, and FNIR by 0.006 on 166 open-set mated probes). MobileFaceNet
// alone, the template before the fusion, measured 0.985 and fails them.
const (
	rank1Floor  = 0.988
	fnirCeiling = 0.035
)
