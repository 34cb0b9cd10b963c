// Command kioskeval runs the kiosk liveness sessions over the clips of
// ../shared/kiosk (evaluation only: nothing is fitted or tuned on them) and
// prints, per clip and challenge list, the decision, the reason, the time to
// decision and the frames analysed per second.
//
//	go run ./sessions/cmd/kioskeval --kiosk ../shared/kiosk
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators/facetemplate"
	"imageapid/internal/evalenv"
	"imageapid/sessions"
)

// runs lists the challenge lists each clip is tried with: none, what its
// labels allow (live clips), and what a replay performs.
var runs = map[string][][]string{
	"tranvanluyt_live.mp4":          {{}, {sessions.TurnLeft, sessions.TurnRight}},
	"lestari_live.mp4":              {{}},
	"liveportrait_d9_live.mp4":      {{}, {sessions.Blink}},
	"liveportrait_d3_live.mp4":      {{}, {sessions.LookDown}},
	"tranvanluyt_replay_screen.mp4": {{}, {sessions.TurnLeft, sessions.TurnRight}},
	"lestari_replay_phone.mp4":      {{}, {sessions.Blink}},
}

func main() {
	kiosk := flag.String("kiosk", "../shared/kiosk", "folder with manifest.json and the clips")
	manifest := flag.String("manifest", "models/manifest.json", "model manifest")
	dir := flag.String("models", "models/build", "model files")
	every := flag.Int("every", 3, "analyse every n-th frame (30 fps clips: 3 is 10 frames/s)")
	flag.Parse()
	if err := run(*kiosk, *manifest, *dir, *every); err != nil {
		fmt.Fprintln(os.Stderr, "kioskeval:", err)
		os.Exit(1)
	}
}

func run(kiosk, manifest, dir string, every int) error {
	b, err := os.ReadFile(filepath.Join(kiosk, "manifest.json"))
	if err != nil {
		return err
	}
	var m struct {
		Clips []struct {
			File string `json:"file"`
			Kind string `json:"kind"`
		} `json:"clips"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	rt, faces, err := evalenv.Open(manifest, dir)
	if err != nil {
		return err
	}
	defer rt.Close()
	a, err := sessions.LoadAnalyzer(rt, faces, facetemplate.DefaultNetwork, false)
	if err != nil {
		return err
	}
	cfg := sessions.DefaultConfig()
	cfg.ChallengeTimeout = 10 * time.Second
	cfg.MaxTimeout = 5 * time.Minute
	mgr, err := sessions.NewManager(cfg, a, nil, nil, log)
	if err != nil {
		return err
	}
	fmt.Println("| clip | kind | challenges | decision | reason | passive p(real) | depth residual | decided at (s) | after the last step (s) | frames | frames/s |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, c := range m.Clips {
		for _, ch := range runs[c.File] {
			if err := runClip(mgr, filepath.Join(kiosk, c.File), c.File, c.Kind, ch, every); err != nil {
				return err
			}
		}
	}
	return nil
}

func runClip(mgr *sessions.Manager, path, name, kind string, challenges []string, every int) error {
	ctx := context.Background()
	created, err := mgr.Create(sessions.Request{Challenges: challenges, ChallengesSet: true, Timeout: time.Minute})
	if err != nil {
		return err
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		return err
	}
	defer vc.Close()
	fps := vc.Get(gocv.VideoCaptureFPS)
	if fps <= 0 {
		fps = 30
	}
	img := gocv.NewMat()
	defer img.Close()
	var g sessions.Guidance
	frames := 0
	// doneMS is the clip time at which the last step (the baseline, then
	// each challenge) was done: the decision's latency runs from there.
	doneMS := int64(-1)
	var busy time.Duration
	for i := 0; vc.Read(&img) && !img.Empty(); i++ {
		if i%every != 0 {
			continue
		}
		start := time.Now()
		tMS := int64(float64(i) * 1000 / fps)
		g, err = mgr.Frame(ctx, created.ID, img, tMS)
		busy += time.Since(start)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if doneMS < 0 && g.Steps > 0 && g.Step == g.Steps {
			doneMS = tMS
		}
		frames++
		if g.Status.Finished() {
			break
		}
	}
	decision, reason, p, at, latency, depth := string(g.Status), "", "", "-", "-", "-"
	if g.Result != nil {
		decision += " " + g.Result.Liveness.Value
		reason = g.Result.Reason
		if pc, ok := g.Result.Checks["passive"].(map[string]any); ok {
			p = fmt.Sprint(pc["probability_real"])
		}
		if dc, ok := g.Result.Checks["depth"].(map[string]any); ok && dc["turned_frames"] != 0 {
			depth = fmt.Sprintf("%v (%v frames)", dc["median_residual"], dc["turned_frames"])
		}
		at = fmt.Sprintf("%.1f", float64(g.Result.DurationMS)/1000)
		if doneMS >= 0 {
			latency = fmt.Sprintf("%.1f", float64(g.Result.DurationMS-doneMS)/1000)
		}
	} else {
		mgr.Cancel(ctx, created.ID)
		reason = "clip ended before a decision"
	}
	fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %.1f |\n", name, kind, "["+strings.Join(challenges, ", ")+"]",
		decision, reason, p, depth, at, latency, frames, float64(frames)/busy.Seconds())
	return nil
}
