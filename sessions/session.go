package sessions

import (
	"fmt"
	"math"
	"sort"
	"time"

	"imageapid/estimators/body"
	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
)

// Status is a session's state.
type Status string

const (
	Waiting   Status = "waiting"
	Running   Status = "running"
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	Expired   Status = "expired"
	Canceled  Status = "canceled"
)

// Finished reports whether the status is final.
func (s Status) Finished() bool { return s != Waiting && s != Running }

// Instruction is what the person is asked to do now.
type Instruction struct {
	Code string `json:"code"`
	Text string `json:"text"`
}

// Guidance is a session's answer to a frame, and what its event stream sends.
type Guidance struct {
	Status      Status      `json:"status"`
	Step        int         `json:"step"`
	Steps       int         `json:"steps"`
	Instruction Instruction `json:"instruction"`
	Progress    float64     `json:"progress"`
	Face        *FaceBrief  `json:"face"`
	Result      *Result     `json:"result,omitempty"`
}

// FaceBrief is the face a frame showed.
type FaceBrief struct {
	BBox    [4]float64 `json:"bbox"`
	Quality float64    `json:"quality"`
}

// Liveness is the session's verdict.
type Liveness struct {
	Value      string  `json:"value"`
	Confidence float64 `json:"confidence"`
}

// Result is a finished session's outcome, with every check's figures.
type Result struct {
	Liveness     Liveness       `json:"liveness"`
	Reason       string         `json:"reason,omitempty"`
	Checks       map[string]any `json:"checks"`
	Verification map[string]any `json:"verification,omitempty"`
	Frames       int            `json:"frames"`
	// DurationMS is the session time from the first frame to the decision.
	DurationMS int64 `json:"duration_ms"`
}

// evidence accumulates what the decision reads.
type evidence struct {
	frames, judged int
	// passive holds each judged frame's probability of a real face.
	passive []float64
	// deviceChecks and deviceHits count the device checks and the ones
	// that found the face on a phone, screen or book; deviceBest is the
	// strongest such detection.
	deviceChecks, deviceHits int
	deviceBest               float64
	deviceClass              int
	bezelHits                int
	// firstEmbedding is the continuity reference; maxDistance the largest
	// template distance to it; breaks counts track breaks.
	firstEmbedding []float32
	maxDistance    float64
	embeddings     int
	breaks         []string
	// landmarks of the first judged frame and the largest change of the
	// face's shape since (see shapeOf).
	firstLandmarks *[6][2]float64
	maxMotion      float64
	// eyeMin and eyeMax bound the eye aperture seen: a blink changes it as
	// no picture can.
	eyeMin, eyeMax float64
	// depth holds the planar residuals of the frames turned from the baseline.
	depth []float64
	// best is the judged frame most worth verifying; bestChanged says the
	// last frame became it.
	best        []float32
	bestQuality float64
	bestChanged bool
}

// session is one liveness session's state. Its methods are called with
// the owning Manager's per-session lock held.
type session struct {
	id         string
	source     string
	challenges []string
	created    time.Time
	expires    time.Time
	timeout    time.Duration
	reference  []float32

	status   Status
	step     int // 0: look straight; 1..n: challenge n; n+1: deciding
	started  bool
	t0, last time.Duration
	size     [2]int
	lastFace *FaceFigures
	lastSeen time.Duration
	baseSet  []FaceFigures
	base     baseline
	current  *challengeState
	done     []*challengeState
	ev       evidence
	guidance Guidance
	result   *Result
	finished time.Time
	lastEmb  time.Duration
	lastDev  time.Duration
	// wantBestShot says the client asked for the best frame's face crop,
	// bestShot holds it (JPEG).
	wantBestShot bool
	bestShot     []byte
}

// Timing of the costlier figures and of the first step.
const (
	embeddingEvery = 500 * time.Millisecond
	deviceEvery    = 1000 * time.Millisecond
	baselineFrames = 3
	baselineSpan   = 400 * time.Millisecond
	// maxFaceGap is the longest time without a face before the track counts as broken.
	maxFaceGap = 2 * time.Second
	// maxJump is how far (in face widths) the face may move between two
	// frames less than jumpWindow apart before the track counts as broken.
	maxJump    = 1.0
	jumpWindow = 300 * time.Millisecond
	// minMotion is the change of the face's shape (in eye distances) below
	// which a session's face never moved: a still picture.
	minMotion = 0.03
	// minEyeRange is the spread of the eye aperture (1 - smallest/largest)
	// that shows eyes closing, as a blink does; the mesh wavers by a few
	// percent on a still face.
	minEyeRange = 0.25
	// judgedYaw bounds the faces passive liveness and templates read.
	judgedYaw = 25.0
)

func (s *session) steps() int { return 1 + len(s.challenges) }

// plan says which costly figures the next frame at time t needs.
func (s *session) plan(cfg *Config, t time.Duration) What {
	return What{
		DeviceMinScore: cfg.DeviceMinScore,
		Passive:        true,
		Embedding:      !s.started || t-s.lastEmb >= embeddingEvery || s.ev.embeddings == 0,
		Device:         !s.started || t-s.lastDev >= deviceEvery || s.ev.deviceChecks == 0,
	}
}

// frame advances the session with one observation at session time t.
func (s *session) frame(cfg *Config, obs Observation, t time.Duration, cal *facetemplate.Calibration) Guidance {
	if !s.started {
		s.started, s.t0, s.size = true, t, [2]int{obs.Width, obs.Height}
	}
	if obs.Face != nil && s.status == Waiting {
		s.status = Running
	}
	s.last = t
	s.ev.frames++
	s.ev.bestChanged = false
	if s.size != [2]int{obs.Width, obs.Height} {
		s.breakTrack(fmt.Sprintf("frame size changed from %dx%d to %dx%d", s.size[0], s.size[1], obs.Width, obs.Height))
		s.size = [2]int{obs.Width, obs.Height}
	}
	g := Guidance{Status: s.status, Step: s.step, Steps: s.steps()}
	f := obs.Face
	if f == nil {
		if s.lastFace != nil && t-s.lastSeen > maxFaceGap {
			s.breakTrack(fmt.Sprintf("no face for %d ms", (t - s.lastSeen).Milliseconds()))
			s.lastFace = nil
		}
		g.Instruction = instruction("no_face")
		return s.finishFrame(cfg, g, t, cal)
	}
	s.track(f, t)
	g.Face = &FaceBrief{BBox: roundBox(f.Box), Quality: round3(quality(cfg, obs, f))}
	if code := gate(cfg, obs, f); code != "" {
		g.Instruction = instruction(code)
		return s.finishFrame(cfg, g, t, cal)
	}
	if math.Abs(f.Yaw-s.base.yaw) < judgedYaw {
		s.judge(f)
	}
	s.readDepth(f)
	g.Instruction = s.advance(f, t)
	return s.finishFrame(cfg, g, t, cal)
}

// track checks the face continues the one seen before.
func (s *session) track(f *FaceFigures, t time.Duration) {
	if p := s.lastFace; p != nil {
		if t-s.lastSeen > maxFaceGap {
			s.breakTrack(fmt.Sprintf("no face for %d ms", (t - s.lastSeen).Milliseconds()))
		} else if t-s.lastSeen <= jumpWindow {
			w := math.Max(p.Box[2]-p.Box[0], 1e-6)
			dx := (f.Box[0] + f.Box[2] - p.Box[0] - p.Box[2]) / 2
			dy := (f.Box[1] + f.Box[3] - p.Box[1] - p.Box[3]) / 2 * float64(s.size[1]) / float64(max(1, s.size[0]))
			if math.Hypot(dx, dy) > maxJump*w {
				s.breakTrack("the face jumped between frames")
			}
		}
	}
	s.lastFace, s.lastSeen = f, t
}

func (s *session) breakTrack(why string) {
	if len(s.ev.breaks) < 8 {
		s.ev.breaks = append(s.ev.breaks, why)
	}
}

// judge adds a gated, near-frontal frame's passive and template figures.
func (s *session) judge(f *FaceFigures) {
	s.ev.judged++
	if !math.IsNaN(f.Passive) {
		s.ev.passive = append(s.ev.passive, f.Passive)
	}
	if f.DeviceChecked {
		s.ev.deviceChecks++
		if f.Bezel {
			s.ev.bezelHits++
		}
		if f.Device >= 0 {
			s.ev.deviceHits++
			if f.DeviceScore > s.ev.deviceBest {
				s.ev.deviceBest, s.ev.deviceClass = f.DeviceScore, f.Device
			}
		}
	}
	if f.Embedding != nil {
		s.ev.embeddings++
		if s.ev.firstEmbedding == nil {
			s.ev.firstEmbedding = f.Embedding
		} else if d, err := facetemplate.Distance(s.ev.firstEmbedding, f.Embedding); err == nil {
			s.ev.maxDistance = math.Max(s.ev.maxDistance, d)
		}
		q := frontalness(f, s.base) * math.Min(1, f.WidthPx/160)
		if s.ev.best == nil || q > s.ev.bestQuality {
			s.ev.best, s.ev.bestQuality, s.ev.bestChanged = f.Embedding, q, true
		}
	}
	if f.EyeOpen > 0 {
		if s.ev.eyeMax == 0 || f.EyeOpen < s.ev.eyeMin {
			s.ev.eyeMin = f.EyeOpen
		}
		s.ev.eyeMax = math.Max(s.ev.eyeMax, f.EyeOpen)
	}
	lm, ok := shapeOf(f.Landmarks)
	if !ok {
		return
	}
	if s.ev.firstLandmarks == nil {
		s.ev.firstLandmarks = &lm
	} else {
		for i := range lm {
			d := math.Hypot(lm[i][0]-s.ev.firstLandmarks[i][0], lm[i][1]-s.ev.firstLandmarks[i][1])
			s.ev.maxMotion = math.Max(s.ev.maxMotion, d)
		}
	}
}

// readDepth adds a turned frame's planar residual against the baseline.
func (s *session) readDepth(f *FaceFigures) {
	if s.base.depth == nil || f.Depth == nil || math.Abs(f.Yaw-s.base.yaw) < depthMinYaw {
		return
	}
	if r, ok := PlanarResidual(s.base.depth, f.Depth, f.IOD); ok {
		s.ev.depth = append(s.ev.depth, r)
	}
}

// advance runs the steps: the frontal baseline, then each challenge.
func (s *session) advance(f *FaceFigures, t time.Duration) Instruction {
	if s.step == 0 {
		zero := baseline{}
		if !zero.isFrontal(f) {
			s.baseSet = s.baseSet[:0]
			return instruction("look_straight")
		}
		s.baseSet = append(s.baseSet, *f)
		if len(s.baseSet) < baselineFrames || t-s.t0 < baselineSpan {
			return instruction("hold_still")
		}
		s.base = medianBaseline(s.baseSet)
		s.nextStep(t)
	}
	if s.current != nil {
		if s.current.update(s.base, f, t) {
			s.done = append(s.done, s.current)
			s.nextStep(t)
		}
	}
	if s.current != nil {
		return instruction(s.current.code)
	}
	return instruction("hold_still")
}

func (s *session) nextStep(t time.Duration) {
	s.step++
	s.current = nil
	if k := s.step - 1; k < len(s.challenges) {
		s.current = &challengeState{code: s.challenges[k], askedAt: t}
	}
}

// finishFrame applies time limits, decides once every step is done, and
// records the guidance.
func (s *session) finishFrame(cfg *Config, g Guidance, t time.Duration, cal *facetemplate.Calibration) Guidance {
	switch {
	case s.current != nil && t-s.current.askedAt > cfg.ChallengeTimeout:
		s.done = append(s.done, s.current)
		s.decide(cfg, cal, Failed, fmt.Sprintf("challenge %s was not performed within %v", s.current.code, cfg.ChallengeTimeout))
	case t-s.t0 > s.timeout:
		s.decide(cfg, cal, Expired, fmt.Sprintf("the session took longer than %v", s.timeout))
	case s.deviceSeen(cfg):
		s.decide(cfg, cal, Failed, deviceReason(s.ev.deviceClass))
	case s.bezelSeen():
		s.decide(cfg, cal, Failed, bezelReason)
	case s.step > len(s.challenges) && s.readyToDecide(cfg):
		s.decide(cfg, cal, "", "")
	case s.ev.frames >= cfg.MaxFrames:
		s.decide(cfg, cal, Failed, fmt.Sprintf("the session reached its limit of %d frames", cfg.MaxFrames))
	}
	g.Status, g.Step = s.status, min(s.step, s.steps())
	g.Progress = s.progress()
	if s.result != nil {
		g.Result = s.result
		g.Instruction = instruction("done")
	}
	s.guidance = g
	return g
}

// deviceSeen says a phone, screen or book held the face: once at the sure
// score, or in two checks and half of them.
func (s *session) deviceSeen(cfg *Config) bool {
	return s.ev.deviceBest >= cfg.DeviceSureScore ||
		(s.ev.deviceHits >= 2 && 2*s.ev.deviceHits >= s.ev.deviceChecks)
}

// bezelSeen says straight edges framed the face in two checks and in more
// than half of them.
func (s *session) bezelSeen() bool {
	return s.ev.bezelHits >= 2 && 2*s.ev.bezelHits > s.ev.deviceChecks
}

const bezelReason = "the face was framed by the edges of a screen or picture"

func (s *session) readyToDecide(cfg *Config) bool {
	return len(s.ev.passive) >= cfg.MinPassiveFrames && s.ev.embeddings > 0 && s.ev.deviceChecks > 0 &&
		s.last-s.t0 >= cfg.MinObserve
}

func (s *session) progress() float64 {
	if s.status.Finished() {
		return 1
	}
	p := float64(min(s.step, s.steps())) / float64(s.steps()+1)
	return round3(p)
}

// decide ends the session. With status empty the checks choose between
// succeeded and failed; otherwise the session ends with that status and
// reason, its checks reported as far as they went.
func (s *session) decide(cfg *Config, cal *facetemplate.Calibration, status Status, reason string) {
	if s.result != nil {
		return
	}
	checks := map[string]any{}
	hardFail, failures := "", 0
	fail := func(why string) {
		if hardFail == "" {
			hardFail = why
		}
		failures++
	}

	// Challenges.
	var chal []map[string]any
	all := true
	for _, c := range s.done {
		chal = append(chal, c.figures())
		all = all && c.done
	}
	if len(s.done) < len(s.challenges) {
		all = false
	}
	checks["challenges"] = map[string]any{"passed": all, "asked": s.challenges, "steps": chal}
	if !all {
		fail("the challenges were not all performed")
	}

	// Passive liveness, fused across frames.
	p := FusePassive(s.ev.passive)
	passOK := len(s.ev.passive) >= cfg.MinPassiveFrames && p >= cfg.PassiveThreshold
	checks["passive"] = map[string]any{
		"passed": passOK, "probability_real": round3(p), "threshold": cfg.PassiveThreshold,
		"frames": len(s.ev.passive), "mean": round3(mean(s.ev.passive)),
	}
	if !passOK {
		fail("passive liveness judged the face not real")
	}

	// A face shown on a device: seen surely once, or again and again.
	devOK := !s.deviceSeen(cfg)
	dev := map[string]any{"passed": devOK, "checks": s.ev.deviceChecks, "hits": s.ev.deviceHits}
	if !devOK {
		dev["object"] = deviceName(s.ev.deviceClass)
		dev["score"] = round3(s.ev.deviceBest)
		fail(deviceReason(s.ev.deviceClass))
	}
	checks["device"] = dev

	// The straight edges of a phone, screen or photo around the face, in
	// most of the frames checked.
	bezelOK := !s.bezelSeen()
	checks["bezel"] = map[string]any{"passed": bezelOK, "checks": s.ev.deviceChecks, "hits": s.ev.bezelHits}
	if !bezelOK {
		fail(bezelReason)
	}

	// The same face throughout.
	maxD := math.Inf(1)
	if cal != nil {
		maxD = distanceAtFAR(cal, cfg.ContinuityMaxFAR)
	}
	contOK := len(s.ev.breaks) == 0 && s.ev.maxDistance <= maxD
	cont := map[string]any{
		"passed": contOK, "max_distance": round3(s.ev.maxDistance), "distance_limit": round3(maxD),
		"templates": s.ev.embeddings, "breaks": s.ev.breaks,
	}
	checks["continuity"] = cont
	if !contOK {
		if len(s.ev.breaks) > 0 {
			fail("the face was not followed without a break: " + s.ev.breaks[0])
		} else {
			fail("the face changed during the session")
		}
	}

	// A turned picture moves as a plane, a turned head does not.
	depthOK, depthMed := true, 0.0
	if len(s.ev.depth) >= depthMinFrames {
		depthMed = median(s.ev.depth)
		depthOK = cfg.DepthMinResidual == 0 || depthMed >= cfg.DepthMinResidual
	}
	checks["depth"] = map[string]any{"passed": depthOK, "turned_frames": len(s.ev.depth),
		"median_residual": round3(depthMed), "min_residual": cfg.DepthMinResidual, "enforced": cfg.DepthMinResidual > 0}
	if !depthOK {
		fail("the face turned as a flat picture does")
	}

	// A still picture never moves: neither the face's shape nor its eyes.
	eyeRange := 0.0
	if s.ev.eyeMax > 0 {
		eyeRange = 1 - s.ev.eyeMin/s.ev.eyeMax
	}
	motionOK := s.ev.judged < 2 || s.ev.maxMotion >= minMotion || eyeRange >= minEyeRange
	checks["motion"] = map[string]any{"passed": motionOK, "max_shape_change": round3(s.ev.maxMotion), "eye_aperture_range": round3(eyeRange)}
	if !motionOK {
		fail("the face never moved: a still picture")
	}

	// Confidence is that of the verdict: p for REAL; for FAKE 1-p, and at
	// least even when a check other than passive liveness failed (those
	// are not probabilities but they are not guesses either).
	value, conf := "REAL", p
	if hardFail != "" || status != "" {
		value, conf = "FAKE", 1-p
		if hardFail != "" && (passOK || failures > 1) {
			conf = math.Max(conf, 0.5)
		}
	}
	res := &Result{
		Liveness:   Liveness{Value: value, Confidence: round3(conf)},
		Checks:     checks,
		Frames:     s.ev.frames,
		DurationMS: (s.last - s.t0).Milliseconds(),
	}
	final := Succeeded
	if value == "FAKE" {
		final = Failed
		res.Reason = hardFail
	}
	if status != "" {
		final, res.Reason = status, reason
	}
	if s.reference != nil {
		res.Verification = s.verify(cfg, cal)
		if final == Succeeded && res.Verification["match"] != true {
			final, res.Reason = Failed, "the face does not match the reference"
		}
	}
	s.result = res
	s.status = final
}

// verify compares the best frame with the session's reference.
func (s *session) verify(cfg *Config, cal *facetemplate.Calibration) map[string]any {
	if s.ev.best == nil || cal == nil {
		return map[string]any{"match": false, "reason": "no frame good enough to verify"}
	}
	d, err := facetemplate.Distance(s.ev.best, s.reference)
	if err != nil {
		return map[string]any{"match": false, "reason": err.Error()}
	}
	far, frr := cal.Rates(d)
	return map[string]any{
		"distance": round6(d), "fa_r": round6(far), "fr_r": round6(frr), "score": round6(cal.Score(d)),
		"match": far <= cfg.VerifyMaxFAR, "max_fa_r": cfg.VerifyMaxFAR,
	}
}

// distanceAtFAR is the largest distance of the calibration table at which
// at most far of the impostor pairs lie.
func distanceAtFAR(cal *facetemplate.Calibration, far float64) float64 {
	best := 0.0
	for _, p := range cal.Points {
		if p[1] <= far {
			best = p[0]
		}
	}
	return best
}

// FusePassive fuses frames' probabilities of a real face as a session
// does: the mean of their log-odds (0 for none).
func FusePassive(ps []float64) float64 {
	if len(ps) == 0 {
		return 0
	}
	var sum float64
	for _, p := range ps {
		sum += logit(p)
	}
	return 1 / (1 + math.Exp(-sum/float64(len(ps))))
}

func logit(p float64) float64 {
	p = math.Min(math.Max(p, 1e-4), 1-1e-4)
	return math.Log(p / (1 - p))
}

// median is the middle value of v (the upper one of an even count).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	return c[len(c)/2]
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// shapeOf places the landmarks relative to their centroid, in units of
// the distance between the eyes: what stays put when a picture of a face
// is moved, scaled or turned in the image plane, and changes when a face
// turns, nods, blinks or speaks.
func shapeOf(pts [6]face.Point) ([6][2]float64, bool) {
	var out [6][2]float64
	var cx, cy float64
	for _, p := range pts {
		cx += p.X / 6
		cy += p.Y / 6
	}
	le := face.Point{X: (pts[0].X + pts[1].X) / 2, Y: (pts[0].Y + pts[1].Y) / 2}
	re := face.Point{X: (pts[2].X + pts[3].X) / 2, Y: (pts[2].Y + pts[3].Y) / 2}
	iod := math.Hypot(re.X-le.X, re.Y-le.Y)
	if !(iod > 0) {
		return out, false
	}
	// Undo the in-plane rotation too: express points along and across the eye line.
	ux, uy := (re.X-le.X)/iod, (re.Y-le.Y)/iod
	for i, p := range pts {
		dx, dy := p.X-cx, p.Y-cy
		out[i] = [2]float64{(dx*ux + dy*uy) / iod, (-dx*uy + dy*ux) / iod}
	}
	return out, true
}

func medianBaseline(fs []FaceFigures) baseline {
	med := func(get func(FaceFigures) float64) float64 {
		v := make([]float64, len(fs))
		for i, f := range fs {
			v[i] = get(f)
		}
		return median(v)
	}
	yaw := med(func(f FaceFigures) float64 { return f.Yaw })
	var depth []face.Point
	nearest := math.Inf(1)
	for _, f := range fs {
		if d := math.Abs(f.Yaw - yaw); f.Depth != nil && d < nearest {
			depth, nearest = f.Depth, d
		}
	}
	return baseline{
		depth:      depth,
		yaw:        yaw,
		pitch:      med(func(f FaceFigures) float64 { return f.Pitch }),
		eyeOpen:    med(func(f FaceFigures) float64 { return f.EyeOpen }),
		mouthWidth: med(func(f FaceFigures) float64 { return f.MouthWidth }),
	}
}

// gate returns the instruction a frame that cannot be judged calls for,
// or "" when it can be.
func gate(cfg *Config, obs Observation, f *FaceFigures) string {
	switch {
	case obs.Faces > 1:
		return "only_one_person"
	case f.WidthPx < cfg.MinFacePx || f.WidthPx < cfg.MinFaceShare*float64(obs.Width):
		return "move_closer"
	case f.Box[0] < -0.05 || f.Box[2] > 1.05 || f.Box[1] < -0.05 || f.Box[3] > 1.05:
		return "center_face"
	case f.Brightness < 40:
		return "more_light"
	}
	return ""
}

// quality is a 0..1 figure of how well a frame shows the face.
func quality(cfg *Config, obs Observation, f *FaceFigures) float64 {
	size := math.Min(1, f.WidthPx/(2*cfg.MinFacePx))
	light := math.Min(1, math.Max(0, (f.Brightness-30)/60)) * math.Min(1, math.Max(0, (240-f.Brightness)/40))
	sharp := math.Min(1, f.Sharpness/100)
	front := frontalness(f, baseline{})
	return size * light * (0.5 + 0.5*sharp) * (0.5 + 0.5*front)
}

func frontalness(f *FaceFigures, b baseline) float64 {
	return math.Max(0, 1-math.Hypot(f.Yaw-b.yaw, f.Pitch-b.pitch)/45)
}

// deviceReason says why a device failed the session; the detector often
// takes a phone for a laptop or a screen, so the class is only what it saw.
func deviceReason(class int) string {
	return "the face was shown on a phone, screen or picture (the detector saw a " + deviceName(class) + ")"
}

func deviceName(class int) string {
	switch class {
	case body.ClassCellPhone:
		return "phone"
	case body.ClassTV:
		return "screen"
	case body.ClassLaptop:
		return "laptop"
	case body.ClassBook:
		return "book or printed picture"
	}
	return "device"
}

func roundBox(b [4]float64) [4]float64 {
	for i := range b {
		b[i] = math.Round(math.Min(1, math.Max(0, b[i]))*1e4) / 1e4
	}
	return b
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
