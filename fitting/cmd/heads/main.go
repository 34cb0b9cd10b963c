// Command heads trains the small attribute heads on ../shared/corpus and
// turns them into TFLite models:
//
//	heads train [-corpus ../shared/corpus] [-out models/heads] [-heads mask,gender,age,emotion]
//	heads build [-heads-dir models/heads] [-models models] [-update]
//	heads compare [-corpus ../shared/corpus] [-zooms 1,0.9,0.8] [-folders faces/,ages/,liveness/] [-nets faceapi]
//	                                            compiled networks on the held-out split
//	heads passive-threshold [-corpus ../shared/corpus]   the sessions' passive_threshold
//	heads liveness-sources -heads liveness_texture,liveness_deep   the liveness heads per held-out source
//
// train is deterministic (fixed seed, single goroutine): the same corpus and
// models give the same bytes. build writes head_<name>.tflite for every
// committed head and checks its sha256 against the manifest (-update
// rewrites the manifest's entry instead).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/fitting/corpus"
	"imageapid/fitting/headfit"
	"imageapid/internal/evalenv"
	"imageapid/models"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: heads train|build [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	corpusDir := fs.String("corpus", "../shared/corpus", "train: the corpus folder")
	headsDir := fs.String("heads-dir", "models/heads", "folder of the committed heads")
	modelDir := fs.String("models", "models", "folder with manifest.json and build/")
	only := fs.String("heads", "mask,gender,age,emotion,liveness_texture,liveness_deep,liveness_session", "train: comma-separated heads")
	cache := fs.String("cache", "", "train: read/write extracted features here (development only)")
	zooms := fs.String("zooms", "1,0.9,0.8", "compare: crop zooms to try")
	folders := fs.String("folders", "faces/,ages/,liveness/", "compare: corpus folders")
	nets := fs.String("nets", "", "compare: only the networks whose name contains this")
	grid := fs.Bool("grid", false, "liveness-sources: also every penalty's figures for each head's feature set")
	update := fs.Bool("update", false, "build: rewrite the manifest entries instead of failing on a mismatch")
	fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	var err error
	switch os.Args[1] {
	case "train":
		err = train(ctx, *corpusDir, *headsDir, *modelDir, strings.Split(*only, ","), *cache)
	case "build":
		err = build(*headsDir, *modelDir, *update)
	case "compare":
		var zs []float64
		if zs, err = parseFloats(*zooms); err == nil {
			err = compare(ctx, *corpusDir, *modelDir, zs, strings.Split(*folders, ","), *nets)
		}
	case "passive-threshold":
		err = passiveThreshold(ctx, *corpusDir, *headsDir, *modelDir, *cache)
	case "liveness-sources":
		err = livenessSourcesTable(ctx, *corpusDir, *headsDir, *modelDir, *cache, strings.Split(*only, ","), *grid)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "heads:", err)
		os.Exit(1)
	}
}

// folders are the corpus folders each head is fitted on.
var folders = map[string]string{
	"mask": "mask/", "gender": "ages/", "age": "ages/", "emotion": "faces/",
	"liveness_texture": livenessSources, "liveness_deep": livenessSources,
	attributes.SessionLivenessHead: livenessSources,
}

// livenessSources stands for liveness/ and liveness2/ together.
const livenessSources = "liveness+liveness2/"

var trainers = map[string]func([]headfit.Extracted) (*attributes.Head, error){
	"mask": headfit.TrainMask, "gender": headfit.TrainGender, "age": headfit.TrainAge, "emotion": headfit.TrainEmotion,
	"liveness_texture": headfit.TrainSourceLiveness("liveness_texture", attributes.FeatTexture),
	"liveness_deep": headfit.TrainSourceLiveness("liveness_deep", "spoofnets", "texture+spoofnets", "mobileface+spoofnets",
		"mobileface+texture+spoofnets"),
	attributes.SessionLivenessHead: headfit.TrainSessionLiveness(attributes.SessionLivenessHead,
		"texture", "spoofnets", "mobileface", "texture+spoofnets", "mobileface+spoofnets", "mobileface+texture+spoofnets",
		"faceres+spoofnets"),
}

// extraction is what extracts corpus features as the committed heads were
// fitted: the models of modelDir, the fitting face pipeline (no close-up
// passes) and every feature network.
type extraction struct {
	manifest *models.Manifest
	rt       *models.Runtime
	p        *face.Pipeline
	x        *attributes.Extractor
}

func openExtraction(modelDir string) (*extraction, error) {
	manifest, err := models.LoadManifest(filepath.Join(modelDir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	rt, err := evalenv.Runtime(modelDir)
	if err != nil {
		return nil, err
	}
	p, err := face.New(rt, face.FittingConfig(filepath.Join(modelDir, "build", "face_geometry.binarypb")))
	if err != nil {
		rt.Close()
		return nil, err
	}
	x, err := attributes.NewExtractor(rt)
	if err != nil {
		rt.Close()
		return nil, err
	}
	return &extraction{manifest: manifest, rt: rt, p: p, x: x}, nil
}

func (e *extraction) Close() { e.rt.Close() }

func train(ctx context.Context, corpusDir, headsDir, modelDir string, names []string, cache string) error {
	e, err := openExtraction(modelDir)
	if err != nil {
		return err
	}
	defer e.Close()
	manifest, p, x := e.manifest, e.p, e.x
	extracted := map[string][]headfit.Extracted{}
	for _, n := range names {
		folder, ok := folders[n]
		if !ok {
			return fmt.Errorf("unknown head %q", n)
		}
		samples, ok := extracted[folder]
		if !ok {
			samples, err = extractCached(ctx, p, x, corpusDir, folder, cacheDir(cache, manifest))
			if err != nil {
				return err
			}
			extracted[folder] = samples
			counts := map[string]int{}
			for _, e := range samples {
				key := e.Source.String()
				if e.File.Labels.Mask != nil {
					key = fmt.Sprintf("%s (mask=%v)", key, *e.File.Labels.Mask)
				}
				counts[key]++
			}
			keys := make([]string, 0, len(counts))
			for k := range counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Printf("  %s: %d faces %s\n", folder, counts[k], k)
			}
		}
		h, err := trainers[n](samples)
		if err != nil {
			return err
		}
		if err := h.Stamp(manifest); err != nil {
			return err
		}
		b, err := h.Encode()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(headsDir, n+".json"), b, 0o644); err != nil {
			return err
		}
		fmt.Printf("head %-8s lambda %-6g %s: %.4f (train %d, held out %d, skipped %d)\n",
			n, h.Fit.Lambda, h.Fit.Metric, h.Fit.Value, h.Fit.Train, h.Fit.Heldout, h.Fit.Skipped)
	}
	return nil
}

// cacheDir is a subfolder of the feature cache named after the networks the
// features come from, so a rebuilt network never reuses stale features.
func cacheDir(cache string, m *models.Manifest) string {
	if cache == "" {
		return ""
	}
	h := sha256.New()
	for _, name := range []string{"face_detection_full_range", "face_landmark", "mobileface", "emotion", "antispoof", "liveness", "faceres"} {
		if mi, err := m.Find(name); err == nil {
			h.Write([]byte(name + mi.SHA256))
		}
	}
	return filepath.Join(cache, hex.EncodeToString(h.Sum(nil))[:16])
}

// largest detects and fits the largest face of img (none: nil).
func largest(ctx context.Context, p *face.Pipeline, img gocv.Mat) ([]face.Face, error) {
	dets, err := p.Detect(ctx, img)
	if err != nil || len(dets) == 0 {
		return nil, err
	}
	f, err := p.Fit(ctx, img, dets[face.Largest(dets)])
	if err != nil {
		return nil, err
	}
	return []face.Face{f}, nil
}

func extractCached(ctx context.Context, p *face.Pipeline, x *attributes.Extractor, corpusDir, folder, cache string) ([]headfit.Extracted, error) {
	var files []corpus.CorpusFile
	var err error
	if folder == livenessSources {
		files, err = corpus.LivenessSources(corpusDir)
	} else {
		files, err = corpus.ReadCorpus(corpusDir, folder)
	}
	if err != nil {
		return nil, err
	}
	var path string
	if cache != "" {
		path = filepath.Join(cache, strings.TrimSuffix(folder, "/")+".gob")
		if f, err := os.Open(path); err == nil {
			defer f.Close()
			var out []headfit.Extracted
			if err := gob.NewDecoder(f).Decode(&out); err == nil && len(out) == len(files) {
				// gob drops false booleans behind pointers: labels come from the manifest.
				for i := range out {
					out[i].File = files[i]
				}
				return out, nil
			}
		}
	}
	fmt.Printf("extracting %d files of %s\n", len(files), folder)
	out, err := headfit.ExtractCorpus(ctx, p, x, corpusDir, files, nil, corpus.Decode, os.Stdout)
	if err != nil {
		return nil, err
	}
	if path != "" {
		os.MkdirAll(cache, 0o755)
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := gob.NewEncoder(f).Encode(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func build(headsDir, modelDir string, update bool) error {
	manifestPath := filepath.Join(modelDir, "manifest.json")
	m, err := models.LoadManifest(manifestPath)
	if err != nil {
		return err
	}
	paths, err := filepath.Glob(filepath.Join(headsDir, "*.json"))
	if err != nil {
		return err
	}
	sort.Strings(paths)
	changed := false
	for _, path := range paths {
		h, err := attributes.LoadHeadFile(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		b, err := h.TFLite()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		got := hex.EncodeToString(sum[:])
		name := attributes.ModelName(h.Name)
		mi, err := m.Find(name)
		if err != nil || mi.SHA256 != got {
			if !update {
				if err != nil {
					return fmt.Errorf("%w (run with -update)", err)
				}
				return fmt.Errorf("head %s: built %s has sha256 %s, the manifest expects %s (run `make train` then -update)", h.Name, name, got, mi.SHA256)
			}
			in, out, err := models.Inspect(b)
			if err != nil {
				return fmt.Errorf("head %s: %w", h.Name, err)
			}
			entry := models.ModelInfo{
				Name: name, File: name + ".tflite",
				Source:    models.Source{Path: filepath.ToSlash(path)},
				Licence:   h.Fit.Licence,
				Origin:    fmt.Sprintf("imageapid %s head (%s, %s features), fitted by `make train` on %s", h.Name, h.Kind, h.Features, h.Fit.Data),
				Precision: "float32", SHA256: got, Inputs: in, Outputs: out,
				Notes: fmt.Sprintf("%s: %.4f", h.Fit.Metric, h.Fit.Value),
			}
			if mi != nil {
				*mi = entry
			} else {
				m.Models = append(m.Models, entry)
			}
			changed = true
		}
		dst := filepath.Join(modelDir, "build", name+".tflite")
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
		fmt.Printf("models: %-28s built from %s (%d bytes)\n", name, path, len(b))
	}
	if changed {
		return m.Save(manifestPath)
	}
	return nil
}
