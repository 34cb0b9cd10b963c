package facetemplate

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"imageapid/models/calibration"
)

// Calibration maps a distance between two templates of one embedder to the
// error rates a threshold at that distance gives, measured on genuine and
// impostor pairs of the calibration corpus, and to a score.
type Calibration struct {
	Network       string `json:"network"`
	ModelID       uint16 `json:"model_id"`
	Corpus        string `json:"corpus"`
	Images        int    `json:"images"`
	ImagesNoFace  int    `json:"images_without_face"`
	Identities    int    `json:"identities"`
	GenuinePairs  int    `json:"genuine_pairs"`
	ImpostorPairs int    `json:"impostor_pairs"`
	// Points are [distance, fa_r, fr_r] at increasing distances: fa_r is the
	// share of impostor pairs at or below the distance, fr_r the share of
	// genuine pairs above it.
	Points [][3]float64 `json:"points"`
	// EER and EERThreshold are the equal error rate and its distance on the corpus.
	EER          float64 `json:"eer"`
	EERThreshold float64 `json:"eer_threshold"`
	// Score is a logistic on distance fitted on the corpus pairs with equal
	// weight for genuine and impostor pairs:
	// score = 1 / (1 + exp(ScoreSlope * (distance - ScoreMidpoint))),
	// the probability of "same person" at even odds.
	ScoreSlope    float64 `json:"score_slope"`
	ScoreMidpoint float64 `json:"score_midpoint"`
}

// CalibrationFile is the committed table's file name for an embedder.
func CalibrationFile(network string, flip bool) string {
	if flip {
		return "verify-" + network + "-flip.json"
	}
	return "verify-" + network + ".json"
}

// LoadCalibration reads the committed table for an embedder.
func LoadCalibration(network string, flip bool) (*Calibration, error) {
	name := CalibrationFile(network, flip)
	b, err := calibration.Files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("verification calibration %s: %w (run `make calibrate-verify`)", name, err)
	}
	var c Calibration
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("verification calibration %s: %w", name, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("verification calibration %s: %w", name, err)
	}
	return &c, nil
}

func (c *Calibration) check() error {
	if len(c.Points) < 2 {
		return fmt.Errorf("%d points, want at least 2", len(c.Points))
	}
	for i := 1; i < len(c.Points); i++ {
		p, q := c.Points[i-1], c.Points[i]
		if !(q[0] > p[0]) || q[1] < p[1] || q[2] > p[2] {
			return fmt.Errorf("points %d and %d are not monotone", i-1, i)
		}
	}
	if !(c.ScoreSlope > 0) {
		return fmt.Errorf("score slope %v is not positive", c.ScoreSlope)
	}
	return nil
}

// Rates returns fa_r and fr_r at distance d, interpolated linearly between
// table points and held at the ends: fa_r never falls and fr_r never rises
// as d grows.
func (c *Calibration) Rates(d float64) (far, frr float64) {
	pts := c.Points
	if d <= pts[0][0] {
		return pts[0][1], pts[0][2]
	}
	last := pts[len(pts)-1]
	if d >= last[0] {
		return last[1], last[2]
	}
	i := sort.Search(len(pts), func(i int) bool { return pts[i][0] >= d })
	p, q := pts[i-1], pts[i]
	t := (d - p[0]) / (q[0] - p[0])
	return p[1] + t*(q[1]-p[1]), p[2] + t*(q[2]-p[2])
}

// Score is the similarity in [0, 1] at distance d (higher = more alike).
func (c *Calibration) Score(d float64) float64 {
	return 1 / (1 + math.Exp(c.ScoreSlope*(d-c.ScoreMidpoint)))
}
