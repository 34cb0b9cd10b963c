// Package mot scores a multi-object tracker's output against ground truth:
// the CLEAR MOT metrics (MOTA, MOTP, identity switches, fragmentations) of
// Bernardin and Stiefelhagen (2008), and the identity metrics (IDF1, IDP,
// IDR) of Ristani et al. (2016), both as the MOTChallenge benchmark and
// py-motmetrics compute them, with IoU as the box similarity.
package mot

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"imageapid/internal/assign"
)

// Box is a rectangle: left, top, width, height, in any unit shared by
// ground truth and hypotheses.
type Box struct{ X, Y, W, H float64 }

// IoU is the intersection over union of two boxes.
func (b Box) IoU(o Box) float64 {
	iw := min(b.X+b.W, o.X+o.W) - max(b.X, o.X)
	ih := min(b.Y+b.H, o.Y+o.H) - max(b.Y, o.Y)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	return inter / (b.W*b.H + o.W*o.H - inter)
}

// Object is one box with the identity it belongs to.
type Object struct {
	ID  int
	Box Box
}

// Frame holds one frame's ground truth and tracker output.
type Frame struct {
	Truth, Hyp []Object
}

// Result holds the metrics of one sequence.
type Result struct {
	Frames      int
	TruthBoxes  int // ground-truth boxes
	HypBoxes    int // tracker boxes
	TruthIDs    int
	HypIDs      int
	Matches     int // true positives
	Misses      int // false negatives
	FalsePos    int
	IDSwitches  int
	Frags       int     // fragmentations
	MOTA        float64 // 1 - (misses + false positives + switches) / truth boxes
	MOTP        float64 // mean IoU of the matches (MOTChallenge's convention; higher is better)
	IDTP        int
	IDF1        float64
	IDP, IDR    float64
	MostlyTrack int // truth identities matched in at least 80% of their frames
	MostlyLost  int // ... in at most 20%
}

// Evaluate scores frames in order. A truth box and a hypothesis may match
// when their IoU is at least minIoU (0.5 in MOTChallenge).
func Evaluate(frames []Frame, minIoU float64) Result {
	r := Result{Frames: len(frames)}
	last := map[int]int{}    // truth id -> hypothesis id it was last matched to
	matched := map[int]int{} // truth id -> matched frames
	present := map[int]int{} // truth id -> frames present
	hypIDs := map[int]bool{}
	// history[truth id] lists, per frame it is present in, whether it was matched.
	history := map[int][]bool{}
	pairFrames := map[[2]int]int{} // (truth id, hyp id) -> frames where they overlap enough
	var iouSum float64
	for _, f := range frames {
		r.TruthBoxes += len(f.Truth)
		r.HypBoxes += len(f.Hyp)
		for _, h := range f.Hyp {
			hypIDs[h.ID] = true
		}
		for _, g := range f.Truth {
			present[g.ID]++
			for _, h := range f.Hyp {
				if g.Box.IoU(h.Box) >= minIoU {
					pairFrames[[2]int{g.ID, h.ID}]++
				}
			}
		}
		pairs := matchFrame(f, last, minIoU)
		hypMatched := make([]bool, len(f.Hyp))
		for gi, g := range f.Truth {
			hi := pairs[gi]
			if hi < 0 {
				r.Misses++
				history[g.ID] = append(history[g.ID], false)
				continue
			}
			h := f.Hyp[hi]
			hypMatched[hi] = true
			r.Matches++
			matched[g.ID]++
			iouSum += g.Box.IoU(h.Box)
			if prev, ok := last[g.ID]; ok && prev != h.ID {
				r.IDSwitches++
			}
			last[g.ID] = h.ID
			history[g.ID] = append(history[g.ID], true)
		}
		for _, m := range hypMatched {
			if !m {
				r.FalsePos++
			}
		}
	}
	r.TruthIDs, r.HypIDs = len(present), len(hypIDs)
	if r.TruthBoxes > 0 {
		r.MOTA = 1 - float64(r.Misses+r.FalsePos+r.IDSwitches)/float64(r.TruthBoxes)
	}
	if r.Matches > 0 {
		r.MOTP = iouSum / float64(r.Matches)
	}
	for id, hist := range history {
		r.Frags += fragmentations(hist)
		share := float64(matched[id]) / float64(present[id])
		switch {
		case share >= 0.8:
			r.MostlyTrack++
		case share <= 0.2:
			r.MostlyLost++
		}
	}
	r.IDTP = identityMatches(pairFrames)
	if n := r.TruthBoxes + r.HypBoxes; n > 0 {
		r.IDF1 = 2 * float64(r.IDTP) / float64(n)
	}
	if r.HypBoxes > 0 {
		r.IDP = float64(r.IDTP) / float64(r.HypBoxes)
	}
	if r.TruthBoxes > 0 {
		r.IDR = float64(r.IDTP) / float64(r.TruthBoxes)
	}
	return r
}

// matchFrame pairs one frame's truth boxes with hypotheses: a truth box keeps
// the hypothesis it was last matched to while they still overlap enough, and
// the rest are paired by the Hungarian method on 1 - IoU. It returns the
// hypothesis index per truth box, or -1.
func matchFrame(f Frame, last map[int]int, minIoU float64) []int {
	pairs := make([]int, len(f.Truth))
	hypTaken := make([]bool, len(f.Hyp))
	for gi, g := range f.Truth {
		pairs[gi] = -1
		prev, ok := last[g.ID]
		if !ok {
			continue
		}
		for hi, h := range f.Hyp {
			if h.ID == prev && !hypTaken[hi] && g.Box.IoU(h.Box) >= minIoU {
				pairs[gi], hypTaken[hi] = hi, true
				break
			}
		}
	}
	var rows []int
	for gi := range f.Truth {
		if pairs[gi] < 0 {
			rows = append(rows, gi)
		}
	}
	var cols []int
	for hi := range f.Hyp {
		if !hypTaken[hi] {
			cols = append(cols, hi)
		}
	}
	if len(rows) == 0 || len(cols) == 0 {
		return pairs
	}
	cost := make([][]float64, len(rows))
	for i, gi := range rows {
		cost[i] = make([]float64, len(cols))
		for j, hi := range cols {
			if iou := f.Truth[gi].Box.IoU(f.Hyp[hi].Box); iou >= minIoU {
				cost[i][j] = 1 - iou
			} else {
				cost[i][j] = assign.Forbidden
			}
		}
	}
	for i, j := range assign.Min(cost) {
		if j >= 0 {
			pairs[rows[i]] = cols[j]
		}
	}
	return pairs
}

// fragmentations counts how often a truth trajectory goes from matched to
// unmatched between its first and last matched frame.
func fragmentations(hist []bool) int {
	first, lastM := -1, -1
	for i, m := range hist {
		if m {
			if first < 0 {
				first = i
			}
			lastM = i
		}
	}
	n := 0
	for i := first + 1; first >= 0 && i <= lastM; i++ {
		if hist[i-1] && !hist[i] {
			n++
		}
	}
	return n
}

// identityMatches pairs truth identities with hypothesis identities one to
// one so that the frames where paired ones overlap are the most, and returns
// that number of frames (IDTP).
func identityMatches(pairFrames map[[2]int]int) int {
	gIndex, hIndex := map[int]int{}, map[int]int{}
	keys := make([][2]int, 0, len(pairFrames))
	for k := range pairFrames {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		if _, ok := gIndex[k[0]]; !ok {
			gIndex[k[0]] = len(gIndex)
		}
		if _, ok := hIndex[k[1]]; !ok {
			hIndex[k[1]] = len(hIndex)
		}
	}
	if len(gIndex) == 0 {
		return 0
	}
	cost := make([][]float64, len(gIndex))
	for i := range cost {
		cost[i] = make([]float64, len(hIndex))
		for j := range cost[i] {
			cost[i][j] = assign.Forbidden
		}
	}
	for k, n := range pairFrames {
		cost[gIndex[k[0]]][hIndex[k[1]]] = -float64(n)
	}
	tp := 0
	for i, j := range assign.Min(cost) {
		if j >= 0 {
			tp += int(-cost[i][j])
		}
	}
	return tp
}

// ReadMOT reads MOTChallenge CSV lines (frame, id, left, top, width, height,
// conf, ...) into objects per frame (1-based frame numbers as keys). Rows
// whose conf column is 0 are not evaluated and are left out.
func ReadMOT(r io.Reader) (map[int][]Object, error) {
	out := map[int][]Object{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		fields := strings.Split(text, ",")
		if len(fields) < 6 {
			return nil, fmt.Errorf("mot line %d: %d fields, want at least 6", line, len(fields))
		}
		var v [7]float64
		v[6] = 1
		for i := 0; i < min(7, len(fields)); i++ {
			x, err := strconv.ParseFloat(strings.TrimSpace(fields[i]), 64)
			if err != nil {
				return nil, fmt.Errorf("mot line %d field %d: %w", line, i+1, err)
			}
			v[i] = x
		}
		if v[6] == 0 {
			continue
		}
		out[int(v[0])] = append(out[int(v[0])], Object{ID: int(v[1]), Box: Box{v[2], v[3], v[4], v[5]}})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mot: %w", err)
	}
	return out, nil
}
