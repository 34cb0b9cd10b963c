// Package evaluation measures 1:N identification on the identities of
// ../shared/corpus: the first photo of each person enrolled, the others
// probing, with half the people left out of the list as impostors. It is
// used by the identeval and identcompare commands and the floors test; the
// daemon never links it.
package evaluation

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"imageapid/estimators"
	"imageapid/estimators/facetemplate"
	"imageapid/fitting/corpus"
	"imageapid/watchlist"
)

// IdentificationResult is 1:N identification measured on a corpus.
type IdentificationResult struct {
	Identities, Photos, NoFace int
	// Enrolled is the identities with an enrolment template (their first
	// photo, in path order, where a face was found).
	Enrolled int
	// Rank1 is the share of mated probes (every other photo of an enrolled
	// identity with a face) whose nearest template, with every identity
	// enrolled, is their own; MatedProbes counts them.
	Rank1       float64
	MatedProbes int
	// Open set: every second identity (in name order) is left out of the
	// list; its photos are non-mated probes.
	OpenMated, OpenNonMated int
	// Threshold is the largest distance at which at most 1% of the
	// non-mated probes get a candidate (FPIR); FNIR is then the share of
	// mated probes whose own identity is not the first candidate under it.
	Threshold, FPIR, FNIR float64
	// ThresholdFAR is the calibration table's fa_r at Threshold.
	ThresholdFAR float64
	// At the default list threshold (watchlist.DefaultConfig().FAR in the table):
	DefaultThreshold, DefaultFPIR, DefaultFNIR float64
}

// String is the figures on a few lines.
func (r IdentificationResult) String() string {
	return fmt.Sprintf("identities %d, photos %d (no face found in %d), enrolled %d\n"+
		"closed set: rank-1 %.4f on %d mated probes\n"+
		"open set (half the identities left out): %d mated, %d non-mated probes\n"+
		"  FNIR %.4f at FPIR %.4f, threshold %.2f (calibration fa_r %.5f)\n"+
		"  default list threshold %.2f: FNIR %.4f, FPIR %.4f",
		r.Identities, r.Photos, r.NoFace, r.Enrolled, r.Rank1, r.MatedProbes,
		r.OpenMated, r.OpenNonMated, r.FNIR, r.FPIR, r.Threshold, r.ThresholdFAR,
		r.DefaultThreshold, r.DefaultFNIR, r.DefaultFPIR)
}

// CorpusPhotos reads identities/ of the corpus folder dir (its manifest.json):
// photo paths by identity, in path order; every keep-th identity (in name
// order) is kept, so a test can sample.
func CorpusPhotos(dir string, keep int) (map[string][]string, error) {
	files, err := corpus.ReadCorpus(dir, "identities/")
	if err != nil {
		return nil, fmt.Errorf("identification %w", err)
	}
	all := map[string][]string{}
	for _, f := range files {
		if f.Labels.Identity != "" {
			all[f.Labels.Identity] = append(all[f.Labels.Identity], filepath.Join(dir, f.Path))
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string][]string{}
	for i, n := range names {
		if keep <= 1 || i%keep == 0 {
			sort.Strings(all[n])
			out[n] = all[n]
		}
	}
	return out, nil
}

// CorpusTemplates are the templates of a corpus's photos (the largest face
// of each), by identity.
type CorpusTemplates struct {
	// Names are the identities in name order.
	Names []string
	// Vecs are each identity's templates, of the photos where a face was
	// found, in path order.
	Vecs map[string][][]float32
	// Photos and NoFace count each identity's photos and those without a face.
	Photos, NoFace map[string]int
}

// ExtractTemplates templates every photo (its largest face) as the daemon does.
func ExtractTemplates(ctx context.Context, photos map[string][]string, x watchlist.Extractor) (*CorpusTemplates, error) {
	t := &CorpusTemplates{Vecs: map[string][][]float32{}, Photos: map[string]int{}, NoFace: map[string]int{}}
	for n := range photos {
		t.Names = append(t.Names, n)
	}
	sort.Strings(t.Names)
	for _, n := range t.Names {
		for _, p := range photos[n] {
			t.Photos[n]++
			v, err := largestFace(ctx, x, p)
			if err != nil {
				return nil, err
			}
			if v == nil {
				t.NoFace[n]++
				continue
			}
			t.Vecs[n] = append(t.Vecs[n], v)
		}
	}
	return t, nil
}

// Half keeps every second identity in name order, from the first (k = 0,
// the sample CorpusPhotos(corpus, 2) reads) or the second (k = 1): two
// disjoint sets of people, to choose anything on one and report on the other.
func (t *CorpusTemplates) Half(k int) *CorpusTemplates {
	h := &CorpusTemplates{Vecs: map[string][][]float32{}, Photos: map[string]int{}, NoFace: map[string]int{}}
	for i, n := range t.Names {
		if i%2 == k%2 {
			h.Names = append(h.Names, n)
			h.Vecs[n], h.Photos[n], h.NoFace[n] = t.Vecs[n], t.Photos[n], t.NoFace[n]
		}
	}
	return h
}

// EvalIdentification templates every photo (its largest face) and measures
// identification with the index and the calibration table the daemon uses.
func EvalIdentification(ctx context.Context, photos map[string][]string, x watchlist.Extractor, cal *facetemplate.Calibration, dim int) (IdentificationResult, error) {
	t, err := ExtractTemplates(ctx, photos, x)
	if err != nil {
		return IdentificationResult{}, err
	}
	return EvalTemplates(t, cal, dim)
}

// EvalTemplates measures identification on extracted templates: the first
// template of each identity is enrolled, the others probe.
func EvalTemplates(t *CorpusTemplates, cal *facetemplate.Calibration, dim int) (IdentificationResult, error) {
	var r IdentificationResult
	names, vecs := t.Names, t.Vecs
	for _, n := range names {
		r.Photos += t.Photos[n]
		r.NoFace += t.NoFace[n]
	}
	r.Identities = len(names)

	closed := watchlist.NewIndex(dim)
	open := watchlist.NewIndex(dim)
	for i, n := range names {
		if len(vecs[n]) == 0 {
			continue
		}
		r.Enrolled++
		closed.Add(n, n, vecs[n][0])
		if i%2 == 0 {
			open.Add(n, n, vecs[n][0])
		}
	}
	correct := 0
	type probe struct {
		mated bool
		own   string
		top   watchlist.Hit
		found bool
	}
	var probes []probe
	for i, n := range names {
		for j, v := range vecs[n] {
			if j > 0 {
				h, err := closed.Search(v, 1, 4)
				if err != nil {
					return r, err
				}
				r.MatedProbes++
				if len(h) == 1 && h[0].PersonID == n {
					correct++
				}
			}
			enrolledHere := i%2 == 0
			if enrolledHere && j == 0 {
				continue // the enrolment photo itself
			}
			h, err := open.Search(v, 1, 4)
			if err != nil {
				return r, err
			}
			pr := probe{mated: enrolledHere, own: n}
			if len(h) == 1 {
				pr.top, pr.found = h[0], true
			}
			probes = append(probes, pr)
		}
	}
	if r.MatedProbes > 0 {
		r.Rank1 = float64(correct) / float64(r.MatedProbes)
	}
	var nonMated []float64
	for _, p := range probes {
		if p.mated {
			r.OpenMated++
		} else {
			r.OpenNonMated++
			if p.found {
				nonMated = append(nonMated, p.top.Distance)
			}
		}
	}
	rates := func(t float64) (fpir, fnir float64) {
		fp, fn := 0, 0
		for _, p := range probes {
			under := p.found && p.top.Distance <= t
			if p.mated && !(under && p.top.PersonID == p.own) {
				fn++
			}
			if !p.mated && under {
				fp++
			}
		}
		return float64(fp) / math.Max(1, float64(r.OpenNonMated)), float64(fn) / math.Max(1, float64(r.OpenMated))
	}
	// The largest threshold with FPIR <= 1%: just under the non-mated top
	// distance that would push it past.
	sort.Float64s(nonMated)
	allowed := int(math.Floor(0.01 * float64(r.OpenNonMated)))
	r.Threshold = 4
	if allowed < len(nonMated) {
		r.Threshold = math.Nextafter(nonMated[allowed], 0)
	}
	r.FPIR, r.FNIR = rates(r.Threshold)
	r.ThresholdFAR, _ = cal.Rates(r.Threshold)
	r.DefaultThreshold = watchlist.Threshold(cal, watchlist.DefaultConfig().FAR)
	r.DefaultFPIR, r.DefaultFNIR = rates(r.DefaultThreshold)
	return r, nil
}

func largestFace(ctx context.Context, x watchlist.Extractor, path string) ([]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identification corpus: %w", err)
	}
	img, err := estimators.DecodeImage(raw, 50_000_000) // as the daemon decodes a request
	if err != nil {
		return nil, fmt.Errorf("identification corpus %s: %w", path, err)
	}
	defer img.Close()
	faces, err := x.Faces(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	best := watchlist.Largest(faces)
	if best < 0 {
		return nil, nil
	}
	return faces[best].Vector, nil
}
