// Command identcompare measures candidate template variants for 1:N
// identification on a corpus's identities/, with people held out: it
// embeds the largest face of every photo with each variant the specs name
// (MobileFaceNet with and without its mirror, zoomed crops, other identity
// networks of the manifest, among them fp: Faceplugin's ArcFace-style
// network, the default template's second part; fa: dlib's ResNet descriptor as
// face-api ships it, on dlib's 150x150 chips with padding 0.25, fa_pX with
// padding X, and fab on face-api's own landmark-box crop), then evaluates score-level fusions of them (a weighted
// concatenation of unit vectors, whose squared distance is the weighted sum
// of the parts' distances) with identeval's protocol on all identities and
// on each half of them (every second identity in name order, from the
// first and from the second). It then chooses the best spec on one half
// and reports it on the other, both ways:
//
//	go run ./watchlist/cmd/identcompare --corpus ../shared/corpus mfn mfn+mfn_m 'mfn+mfn_m:1,fr+fr_m:0.1'
//
// A spec joins parts with ","; a part averages variants with "+" and takes
// a weight after ":". With --features FILE the embeddings (biometric
// templates of the corpus's people) are kept in FILE, mode 0600, and read
// from it on later runs; without, they stay in memory.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/internal/evalenv"
	"imageapid/models"
	"imageapid/watchlist/evaluation"
)

func main() {
	corpus := flag.String("corpus", "../shared/corpus", "corpus folder (with manifest.json and identities/)")
	manifest := flag.String("manifest", "models/manifest.json", "model manifest")
	dir := flag.String("models", "models/build", "model folder")
	features := flag.String("features", "", "keep the embeddings in this file (JSON lines, 0600) and reuse them; default: in memory only")
	flag.Parse()
	if err := run(*corpus, *manifest, *dir, *features, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "identcompare:", err)
		os.Exit(1)
	}
}

// variant is one way of embedding a face.
type variant struct {
	name   string
	model  string
	size   int
	zoom   float64 // about the crop centre; 0: face.AlignedCrop (black border)
	dlib   float64 // > 0: face.DlibChip with this padding instead
	box    bool    // attributes.LandmarkBoxCrop (face-api's own crop, padding 0.2) instead
	mirror bool
	lo, hi float32 // pixels 0..255 mapped onto [lo, hi], RGB
	bgr    bool
	out    int
}

func variants(m *models.Manifest) []variant {
	mfnLo, mfnHi := float32(-127.5/128), float32(127.5/128)
	var vs []variant
	for _, mir := range []bool{false, true} {
		suf := ""
		if mir {
			suf = "_m"
		}
		vs = append(vs, variant{name: "mfn" + suf, model: "mobilefacenet", size: 112, mirror: mir, lo: mfnLo, hi: mfnHi})
		for _, z := range []float64{0.9, 1.0, 1.1} {
			vs = append(vs, variant{name: fmt.Sprintf("mfn_z%.2f%s", z, suf), model: "mobilefacenet", size: 112, zoom: z, mirror: mir, lo: mfnLo, hi: mfnHi})
		}
		vs = append(vs,
			variant{name: "hmfn" + suf, model: "human_mobilefacenet", size: 112, mirror: mir, lo: 0, hi: 1},
			variant{name: "mf" + suf, model: "mobileface", size: 112, zoom: 1, mirror: mir, lo: 0, hi: 255},
			// As the attribute features feed FaceRes: BGR 0..255, zoom 0.9.
			variant{name: "fr" + suf, model: "faceres", size: 224, zoom: 0.9, mirror: mir, bgr: true, lo: 0, hi: 255, out: 1},
			variant{name: "frd" + suf, model: "faceres_deep", size: 224, zoom: 0.9, mirror: mir, bgr: true, lo: 0, hi: 255, out: 1},
			// dlib's ResNet descriptor (face-api's FaceRecognitionNet) on dlib's
			// chips, RGB 0..255 (the graph subtracts the mean and scales).
			variant{name: "fa" + suf, model: "faceapi_face_recognition", size: 150, dlib: 0.25, mirror: mir, lo: 0, hi: 255},
		)
		// Faceplugin's ArcFace-style network: RGB, (x - 127) / 128.
		vs = append(vs, variant{name: "fp" + suf, model: "faceplugin_recognition", size: 112, mirror: mir, lo: -127.0 / 128, hi: 1})
		vs = append(vs, variant{name: "fab" + suf, model: "faceapi_face_recognition", size: 150, box: true, mirror: mir, lo: 0, hi: 255})
		for _, pad := range []float64{0.15, 0.2, 0.3, 0.35} {
			vs = append(vs, variant{name: fmt.Sprintf("fa_p%.2f%s", pad, suf), model: "faceapi_face_recognition", size: 150, dlib: pad, mirror: mir, lo: 0, hi: 255})
		}
	}
	out := vs[:0]
	for _, v := range vs {
		if _, err := m.Find(v.model); err == nil {
			out = append(out, v)
		}
	}
	return out
}

type record struct {
	ID   string               `json:"id"`
	Path string               `json:"path"`
	F    map[string][]float32 `json:"f,omitempty"`
}

func run(corpus, manifestPath, dir, features string, specs []string) error {
	if len(specs) == 0 {
		return errors.New("no spec given (e.g. mfn mfn+mfn_m)")
	}
	var recs []record
	var err error
	if _, serr := os.Stat(features); features != "" && serr == nil {
		recs, err = readFeatures(features)
	} else if recs, err = extract(corpus, manifestPath, dir, used(specs)); err == nil && features != "" {
		err = writeFeatures(features, recs)
	}
	if err != nil {
		return err
	}
	// The table only labels the figures with fa_r; rank-1 and FNIR at FPIR
	// 1% do not depend on it.
	cal, err := facetemplate.LoadCalibration(facetemplate.DefaultNetwork, false)
	if err != nil {
		return err
	}
	type row struct {
		spec string
		r    [3]evaluation.IdentificationResult // all, half A, half B
	}
	var rows []row
	for _, spec := range specs {
		t, err := templates(recs, spec)
		if err != nil {
			return err
		}
		var rw row
		rw.spec = spec
		for k, part := range []*evaluation.CorpusTemplates{t, t.Half(0), t.Half(1)} {
			if rw.r[k], err = evaluation.EvalTemplates(part, cal, dim(part)); err != nil {
				return err
			}
		}
		rows = append(rows, rw)
		fmt.Printf("%-45s all: %s | A: %s | B: %s\n", spec, short(rw.r[0]), short(rw.r[1]), short(rw.r[2]))
	}
	// The choice: fewest rank-1 misses plus FNIR at FPIR <= 1% on one half.
	cost := func(r evaluation.IdentificationResult) float64 { return (1 - r.Rank1) + r.FNIR }
	for _, k := range []int{1, 2} {
		best := rows[0]
		for _, rw := range rows[1:] {
			if cost(rw.r[k]) < cost(best.r[k]) {
				best = rw
			}
		}
		other := 3 - k
		fmt.Printf("chosen on half %c: %s (%s); on held-out half %c: %s (first spec there: %s)\n",
			'A'+k-1, best.spec, short(best.r[k]), 'A'+other-1, short(best.r[other]), short(rows[0].r[other]))
	}
	return nil
}

func dim(t *evaluation.CorpusTemplates) int {
	for _, n := range t.Names {
		if len(t.Vecs[n]) > 0 {
			return len(t.Vecs[n][0])
		}
	}
	return 0
}

func short(r evaluation.IdentificationResult) string {
	return fmt.Sprintf("rank-1 %.4f, FNIR %.4f at FPIR %.4f", r.Rank1, r.FNIR, r.FPIR)
}

// used returns the names of the variants the specs use.
func used(specs []string) map[string]bool {
	names := map[string]bool{}
	for _, spec := range specs {
		for _, part := range strings.Split(spec, ",") {
			part, _, _ = strings.Cut(part, ":")
			for _, name := range strings.Split(part, "+") {
				names[name] = true
			}
		}
	}
	return names
}

// extract embeds the largest face of every photo with every variant the
// specs use (a features file made so holds only those).
func extract(corpus, manifestPath, dir string, want map[string]bool) ([]record, error) {
	ctx := context.Background()
	m, err := models.LoadManifest(manifestPath)
	if err != nil {
		return nil, err
	}
	rt, p, err := evalenv.Open(manifestPath, dir)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	var vs []variant
	for _, v := range variants(m) {
		if want[v.name] {
			vs = append(vs, v)
		}
	}
	nets := map[string]*models.Model{}
	for _, v := range vs {
		if nets[v.model] == nil {
			if nets[v.model], err = rt.ModelWithBatch(v.model, 1); err != nil {
				return nil, err
			}
		}
	}
	photos, err := evaluation.CorpusPhotos(corpus, 1)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(photos))
	for n := range photos {
		names = append(names, n)
	}
	sort.Strings(names)
	var recs []record
	for k, n := range names {
		for _, path := range photos[n] {
			rec, err := embedPhoto(ctx, p, nets, vs, path)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			rec.ID = n
			recs = append(recs, rec)
		}
		fmt.Fprintf(os.Stderr, "\rembedded %d/%d identities", k+1, len(names))
	}
	fmt.Fprintln(os.Stderr)
	return recs, nil
}

// writeFeatures keeps the embeddings in path (0600), written whole or not at all.
func writeFeatures(path string, recs []record) error {
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("features: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("features %s: %w", tmp, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("features %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("features %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

func embedPhoto(ctx context.Context, p *face.Pipeline, nets map[string]*models.Model, vs []variant, path string) (record, error) {
	rec := record{Path: path}
	raw, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	img, err := estimators.DecodeImage(raw, 50_000_000)
	if err != nil {
		return rec, err
	}
	defer img.Close()
	dets, err := p.Detect(ctx, img)
	if err != nil || len(dets) == 0 {
		return rec, err
	}
	f, err := p.Fit(ctx, img, dets[face.Largest(dets)])
	if err != nil {
		return rec, err
	}
	rec.F = map[string][]float32{}
	for _, v := range vs {
		vec, err := embed(ctx, nets[v.model], img, &f, v)
		if err != nil {
			return rec, fmt.Errorf("%s: %w", v.name, err)
		}
		rec.F[v.name] = unit(vec)
	}
	return rec, nil
}

func embed(ctx context.Context, m *models.Model, img gocv.Mat, f *face.Face, v variant) ([]float32, error) {
	var crop gocv.Mat
	var err error
	switch {
	case v.box:
		crop, err = attributes.LandmarkBoxCrop(img, f, v.size, 0.2)
	case v.dlib > 0:
		crop, err = face.DlibChip(img, f, v.size, v.dlib)
	case v.zoom == 0:
		crop, err = face.AlignedCrop(img, f, v.size)
	default:
		crop, err = attributes.ZoomedCrop(img, f, v.size, v.zoom)
	}
	if err != nil {
		return nil, err
	}
	defer crop.Close()
	if v.mirror {
		mirrored := gocv.NewMat()
		defer mirrored.Close()
		gocv.Flip(crop, &mirrored, 1)
		crop, mirrored = mirrored, crop
	}
	pix, err := crop.DataPtrUint8()
	if err != nil {
		return nil, err
	}
	scale := (v.hi - v.lo) / 255
	var out []float32
	err = m.Run(ctx, func(it *models.Interpreter) error {
		in, err := it.Input(0)
		if err != nil {
			return err
		}
		if len(in) != len(pix) {
			return fmt.Errorf("input holds %d values, the crop %d", len(in), len(pix))
		}
		for i := 0; i+2 < len(pix); i += 3 {
			b, g, r := float32(pix[i]), float32(pix[i+1]), float32(pix[i+2])
			if v.bgr {
				r, b = b, r
			}
			in[i], in[i+1], in[i+2] = r*scale+v.lo, g*scale+v.lo, b*scale+v.lo
		}
		if err := it.Invoke(); err != nil {
			return err
		}
		o, err := it.Output(v.out)
		out = append([]float32(nil), o...)
		return err
	})
	return out, err
}

func readFeatures(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// templates builds each photo's template for a spec, in corpus order.
func templates(recs []record, spec string) (*evaluation.CorpusTemplates, error) {
	t := &evaluation.CorpusTemplates{Vecs: map[string][][]float32{}, Photos: map[string]int{}, NoFace: map[string]int{}}
	for _, r := range recs {
		if t.Photos[r.ID] == 0 {
			t.Names = append(t.Names, r.ID)
		}
		t.Photos[r.ID]++
		if r.F == nil {
			t.NoFace[r.ID]++
			continue
		}
		v, err := fuse(r.F, spec)
		if err != nil {
			return nil, err
		}
		t.Vecs[r.ID] = append(t.Vecs[r.ID], v)
	}
	sort.Strings(t.Names)
	return t, nil
}

// fuse concatenates the spec's parts, each the unit mean of its variants
// scaled by the square root of its weight share: a unit vector whose dot
// product with another is the weighted mean of the parts' cosines.
func fuse(feats map[string][]float32, spec string) ([]float32, error) {
	type part struct {
		vec []float32
		w   float64
	}
	var parts []part
	var total float64
	for _, p := range strings.Split(spec, ",") {
		w := 1.0
		if i := strings.IndexByte(p, ':'); i >= 0 {
			var err error
			if w, err = strconv.ParseFloat(p[i+1:], 64); err != nil || w < 0 {
				return nil, fmt.Errorf("spec %q: bad weight %q", spec, p[i+1:])
			}
			p = p[:i]
		}
		var sum []float32
		for _, name := range strings.Split(p, "+") {
			v, ok := feats[name]
			if !ok {
				return nil, fmt.Errorf("spec %q: no variant %q in the features", spec, name)
			}
			if sum == nil {
				sum = make([]float32, len(v))
			}
			for i := range v {
				sum[i] += v[i]
			}
		}
		parts = append(parts, part{unit(sum), w})
		total += w
	}
	var out []float32
	for _, p := range parts {
		k := float32(math.Sqrt(p.w / total))
		for _, x := range p.vec {
			out = append(out, x*k)
		}
	}
	return out, nil
}

func unit(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	k := 1 / math.Sqrt(n)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * k)
	}
	return out
}
