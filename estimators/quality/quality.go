// Package quality measures the image-quality signals of one face for the
// quality-assessment-estimator (the 29 "qaa" fields of the Image API):
// sharpness, illumination evenness, flare, eye openness, head rotation,
// mask and neutral expression (given by the attribute heads), eye distance,
// margins, noise, watermark, background uniformity, dynamic range, and a
// total score combining them. Each field comes from a measured signal; the
// constants that map signals to 0..100 scores are documented where defined.
package quality

import (
	"errors"
	"fmt"
	"image"
	"math"
	"sort"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
)

// Thresholds turn scores into the boolean flags. Defaults follow the
// Image API's quality_assessment configuration where it names one.
type Thresholds struct {
	Blur           int     `yaml:"threshold_blur"`          // isSharp: sharpnessScore >= this (20)
	Illumination   int     `yaml:"threshold_illumination"`  // isEvenlyIlluminated: illuminationScore >= this (50)
	Angles         int     `yaml:"threshold_angles"`        // isRotationAcceptable: |yaw|, |roll| <= this (10)
	PitchOffset    int     `yaml:"pitch_offset"`            // and |pitch| <= Angles + this (20)
	MaskScore      int     `yaml:"mask_score"`              // notMasked: notMaskedScore >= this (20)
	NeutralEmotion int     `yaml:"neutral_emotion_score"`   // isNeutralEmotion: neutralEmotionScore >= this (20)
	EyesDistance   int     `yaml:"threshold_eyes_distance"` // isEyesDistanceAcceptable: eyesDistance >= this (60 px)
	Noise          int     `yaml:"threshold_noise"`         // isNotNoisy: noiseScore >= this (20)
	EyeOpenness    int     `yaml:"threshold_eye_openness"`  // is*EyeOpened: openness >= this (40)
	Flare          int     `yaml:"threshold_flare"`         // noFlare: saturated face pixels below this per mille (10)
	Watermark      int     `yaml:"threshold_watermark"`     // hasWatermark: watermarkScore >= this (50)
	Background     int     `yaml:"threshold_background"`    // isBackgroundUniform: backgroundUniformityScore >= this (50)
	DynamicRange   int     `yaml:"threshold_dynamic_range"` // isDynamicRangeAcceptable: dynamicRangeScore > this (127)
	MarginRatio    float64 `yaml:"margin_ratio"`            // required free margin around the face, in face sizes (0.2)
}

// DefaultThresholds are the documented defaults.
func DefaultThresholds() Thresholds {
	return Thresholds{Blur: 20, Illumination: 50, Angles: 10, PitchOffset: 20, MaskScore: 20, NeutralEmotion: 20,
		EyesDistance: 60, Noise: 20, EyeOpenness: 40, Flare: 10, Watermark: 50, Background: 50, DynamicRange: 127,
		MarginRatio: 0.2}
}

// Input is one face to assess.
type Input struct {
	// Image is the whole BGR image.
	Image gocv.Mat
	// Face is the fitted face; its Mesh may be empty (then eye openness is unknown).
	Face *face.Face
	// Box is the face box in image pixels (the object's bbox).
	Box image.Rectangle
	// Yaw, Pitch, Roll in degrees.
	Yaw, Pitch, Roll float64
	// MaskProbability and NeutralProbability come from the attribute heads.
	MaskProbability, NeutralProbability float64
}

// Report is the 29 qaa fields, in the Image API's order and names.
type Report struct {
	TotalScore                int  `json:"totalScore"`
	IsSharp                   bool `json:"isSharp"`
	SharpnessScore            int  `json:"sharpnessScore"`
	IsEvenlyIlluminated       bool `json:"isEvenlyIlluminated"`
	IlluminationScore         int  `json:"illuminationScore"`
	NoFlare                   bool `json:"noFlare"`
	IsLeftEyeOpened           bool `json:"isLeftEyeOpened"`
	LeftEyeOpennessScore      int  `json:"leftEyeOpennessScore"`
	IsRightEyeOpened          bool `json:"isRightEyeOpened"`
	RightEyeOpennessScore     int  `json:"rightEyeOpennessScore"`
	IsRotationAcceptable      bool `json:"isRotationAcceptable"`
	MaxRotationDeviation      int  `json:"maxRotationDeviation"`
	NotMasked                 bool `json:"notMasked"`
	NotMaskedScore            int  `json:"notMaskedScore"`
	IsNeutralEmotion          bool `json:"isNeutralEmotion"`
	NeutralEmotionScore       int  `json:"neutralEmotionScore"`
	IsEyesDistanceAcceptable  bool `json:"isEyesDistanceAcceptable"`
	EyesDistance              int  `json:"eyesDistance"`
	IsMarginsAcceptable       bool `json:"isMarginsAcceptable"`
	MarginOuterDeviation      int  `json:"marginOuterDeviation"`
	MarginInnerDeviation      int  `json:"marginInnerDeviation"`
	IsNotNoisy                bool `json:"isNotNoisy"`
	NoiseScore                int  `json:"noiseScore"`
	HasWatermark              bool `json:"hasWatermark"`
	WatermarkScore            int  `json:"watermarkScore"`
	IsBackgroundUniform       bool `json:"isBackgroundUniform"`
	BackgroundUniformityScore int  `json:"backgroundUniformityScore"`
	IsDynamicRangeAcceptable  bool `json:"isDynamicRangeAcceptable"`
	DynamicRangeScore         int  `json:"dynamicRangeScore"`
}

// Signals are the raw measurements behind a report (for tests and tuning).
type Signals struct {
	LaplacianVar      float64 // variance of the Laplacian of the aligned face (gray levels^2)
	HalfRatio         float64 // darker / brighter half of the face, mean gray
	SaturatedFraction float64 // face pixels with every channel >= 250
	LeftEAR, RightEAR float64 // eye aspect ratios (image-left, image-right eye); NaN without a mesh
	NoiseSigma        float64 // Immerkaer noise estimate on the face box (gray levels)
	StrokeDensity     float64 // thin high-contrast stroke pixels per image pixel outside the face
	BackgroundStd     float64 // gray standard deviation outside the grown face box
	FaceMean          float64 // mean gray of the aligned face
	FaceP1, FaceP99   float64 // 1st and 99th percentile gray of the aligned face
}

// alignedSide is the side of the aligned face crop the photometric signals
// are measured on (ArcFace layout, so the face fills the same area at any
// resolution).
const alignedSide = 128

// Assess measures one face.
func Assess(in Input, th Thresholds) (Report, Signals, error) {
	if in.Image.Empty() || in.Face == nil {
		return Report{}, Signals{}, errors.New("quality: no image or face")
	}
	crop, err := face.AlignedCrop(in.Image, in.Face, alignedSide)
	if err != nil {
		return Report{}, Signals{}, fmt.Errorf("quality: %w", err)
	}
	defer crop.Close()
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(crop, &gray, gocv.ColorBGRToGray)
	// The face proper inside the aligned crop: between the cheeks, brows to chin.
	k := float64(alignedSide) / 112
	faceRect := image.Rect(int(22*k), int(30*k), int(90*k), int(110*k))

	var sg Signals
	sg.LaplacianVar = laplacianVariance(gray, faceRect)
	left := meanGray(gray, image.Rect(faceRect.Min.X, faceRect.Min.Y, (faceRect.Min.X+faceRect.Max.X)/2, faceRect.Max.Y))
	right := meanGray(gray, image.Rect((faceRect.Min.X+faceRect.Max.X)/2, faceRect.Min.Y, faceRect.Max.X, faceRect.Max.Y))
	sg.HalfRatio = math.Min(left, right) / math.Max(math.Max(left, right), 1)
	sg.SaturatedFraction = saturatedFraction(crop, faceRect)
	sg.FaceMean, sg.FaceP1, sg.FaceP99 = grayStats(gray, faceRect)
	sg.LeftEAR, sg.RightEAR = math.NaN(), math.NaN()
	if len(in.Face.Mesh) >= 468 {
		sg.LeftEAR = eyeAspectRatio(in.Face.Mesh, subjectRightEyeLids)
		sg.RightEAR = eyeAspectRatio(in.Face.Mesh, subjectLeftEyeLids)
	}
	box := in.Box.Intersect(image.Rect(0, 0, in.Image.Cols(), in.Image.Rows()))
	sg.NoiseSigma = noiseSigma(in.Image, box)
	sg.StrokeDensity, sg.BackgroundStd = backgroundSignals(in.Image, in.Box)

	var r Report
	r.SharpnessScore = score(100 * (1 - math.Exp(-sg.LaplacianVar/sharpnessScale)))
	r.IsSharp = r.SharpnessScore >= th.Blur
	// Evenness: the ratio of the halves' mean gray, 1 = even. A ratio of 0.6
	// (one side 40% darker) scores 50.
	r.IlluminationScore = score(100 * clamp01((sg.HalfRatio-0.2)/0.8))
	r.IsEvenlyIlluminated = r.IlluminationScore >= th.Illumination
	r.NoFlare = sg.SaturatedFraction*1000 < float64(th.Flare)
	r.LeftEyeOpennessScore, r.RightEyeOpennessScore = opennessScore(sg.LeftEAR), opennessScore(sg.RightEAR)
	r.IsLeftEyeOpened = r.LeftEyeOpennessScore >= th.EyeOpenness
	r.IsRightEyeOpened = r.RightEyeOpennessScore >= th.EyeOpenness
	dev := math.Max(math.Max(math.Abs(in.Yaw), math.Abs(in.Roll)), math.Abs(in.Pitch))
	r.MaxRotationDeviation = int(math.Round(dev))
	r.IsRotationAcceptable = math.Abs(in.Yaw) <= float64(th.Angles) && math.Abs(in.Roll) <= float64(th.Angles) &&
		math.Abs(in.Pitch) <= float64(th.Angles+th.PitchOffset)
	r.NotMaskedScore = score(100 * (1 - clamp01(in.MaskProbability)))
	r.NotMasked = r.NotMaskedScore >= th.MaskScore
	r.NeutralEmotionScore = score(100 * clamp01(in.NeutralProbability))
	r.IsNeutralEmotion = r.NeutralEmotionScore >= th.NeutralEmotion
	le, re := in.Face.LeftEye(), in.Face.RightEye()
	r.EyesDistance = int(math.Round(math.Hypot(le.X-re.X, le.Y-re.Y)))
	r.IsEyesDistanceAcceptable = r.EyesDistance >= th.EyesDistance
	r.MarginOuterDeviation, r.MarginInnerDeviation = margins(in.Box, in.Image.Cols(), in.Image.Rows(), th.MarginRatio)
	r.IsMarginsAcceptable = r.MarginOuterDeviation == 0 && r.MarginInnerDeviation == 0
	// Noise: sigma 2 (a clean camera image) scores about 80, sigma 10 about 30.
	r.NoiseScore = score(100 * math.Exp(-sg.NoiseSigma/noiseScale))
	r.IsNotNoisy = r.NoiseScore >= th.Noise
	r.WatermarkScore = score(100 * clamp01(sg.StrokeDensity/strokeScale))
	r.HasWatermark = r.WatermarkScore >= th.Watermark
	r.BackgroundUniformityScore = score(100 * math.Exp(-sg.BackgroundStd/backgroundScale))
	r.IsBackgroundUniform = r.BackgroundUniformityScore >= th.Background
	// Dynamic range on the Face SDK's 0..2 scale times 100: the face's 1..99
	// percentile spread over half the gray range.
	r.DynamicRangeScore = int(math.Round(math.Min(200, 200*(sg.FaceP99-sg.FaceP1)/255)))
	r.IsDynamicRangeAcceptable = r.DynamicRangeScore > th.DynamicRange
	r.TotalScore = total(&r, sg)
	return r, sg, nil
}

// Score scales, measured on face photos of ../shared/corpus (identities/):
// their median Laplacian variance on the aligned crop scores about 75.
const (
	sharpnessScale  = 120.0
	noiseScale      = 8.0
	strokeScale     = 0.02
	backgroundScale = 45.0
)

// total combines the scores as a product of factors in [0,1], so that any
// one severe defect (blur, darkness, a turned or tiny face) sinks it.
func total(r *Report, sg Signals) int {
	f := 1.0
	f *= math.Min(1, float64(r.SharpnessScore)/70+0.02)
	f *= exposure(sg.FaceMean)
	f *= math.Sqrt(math.Max(0.05, float64(r.IlluminationScore)/100))
	f *= math.Max(0.05, 1-math.Max(0, float64(r.MaxRotationDeviation)-10)/50)
	f *= math.Sqrt(math.Max(0.05, float64(r.NoiseScore)/100))
	f *= math.Min(1, 0.4+0.6*float64(r.EyesDistance)/60)
	f *= 0.75 + 0.25*math.Min(1, float64(r.DynamicRangeScore)/128)
	if !r.IsMarginsAcceptable {
		f *= 0.85
	}
	if !r.NoFlare {
		f *= 0.85
	}
	f *= 0.7 + 0.3*float64(r.NotMaskedScore)/100
	f *= 0.85 + 0.15*float64(r.LeftEyeOpennessScore+r.RightEyeOpennessScore)/200
	return score(100 * f)
}

// exposure is 1 for a face of mean gray 80..190, falling to 0 at 10 and 250.
func exposure(mean float64) float64 {
	switch {
	case mean < 80:
		return clamp01((mean - 10) / 70)
	case mean > 190:
		return clamp01((250 - mean) / 60)
	}
	return 1
}

// Eye lids: outer corner, inner corner, then three upper/lower lid pairs, in
// mesh indices. The image-left eye is the subject's right.
var (
	subjectRightEyeLids = [8]int{33, 133, 160, 144, 159, 145, 158, 153}
	subjectLeftEyeLids  = [8]int{263, 362, 387, 373, 386, 374, 385, 380}
)

// eyeAspectRatio is the mean lid opening over the eye width.
func eyeAspectRatio(mesh [][3]float64, idx [8]int) float64 {
	d := func(a, b int) float64 {
		return math.Hypot(mesh[a][0]-mesh[b][0], mesh[a][1]-mesh[b][1])
	}
	w := d(idx[0], idx[1])
	if w <= 0 {
		return math.NaN()
	}
	return (d(idx[2], idx[3]) + d(idx[4], idx[5]) + d(idx[6], idx[7])) / (3 * w)
}

// opennessScore maps the eye aspect ratio to 0..100: the mesh gives about
// 0.30 for an open eye and 0.10 or less for a closed one; unknown is 50.
func opennessScore(ear float64) int {
	if math.IsNaN(ear) {
		return 50
	}
	return score(100 * clamp01((ear-earClosed)/(earOpen-earClosed)))
}

const (
	earClosed = 0.10
	earOpen   = 0.26
)

// margins returns, in pixels, how far the face lacks the required free
// margin to the image edge (outer) and how far the face box itself is cut by
// the image (inner); both 0 for a well-placed face.
func margins(b image.Rectangle, w, h int, ratio float64) (outer, inner int) {
	mx := ratio * float64(b.Dx())
	my := ratio * float64(b.Dy())
	gaps := []float64{float64(b.Min.X) - mx, float64(b.Min.Y) - my, float64(w-b.Max.X) - mx, float64(h-b.Max.Y) - my}
	cuts := []float64{float64(-b.Min.X), float64(-b.Min.Y), float64(b.Max.X - w), float64(b.Max.Y - h)}
	var o, in float64
	for i := range gaps {
		o = math.Max(o, -gaps[i])
		in = math.Max(in, cuts[i])
	}
	return int(math.Ceil(o)), int(math.Ceil(in))
}

func laplacianVariance(gray gocv.Mat, r image.Rectangle) float64 {
	region := gray.Region(r)
	defer region.Close()
	lap := gocv.NewMat()
	defer lap.Close()
	gocv.Laplacian(region, &lap, gocv.MatTypeCV64F, 1, 1, 0, gocv.BorderReplicate)
	mean, std := gocv.NewMat(), gocv.NewMat()
	defer mean.Close()
	defer std.Close()
	gocv.MeanStdDev(lap, &mean, &std)
	s := std.GetDoubleAt(0, 0)
	return s * s
}

func meanGray(gray gocv.Mat, r image.Rectangle) float64 {
	region := gray.Region(r)
	defer region.Close()
	return region.Mean().Val1
}

func grayStats(gray gocv.Mat, r image.Rectangle) (mean, p1, p99 float64) {
	region := gray.Region(r)
	defer region.Close()
	c := region.Clone()
	defer c.Close()
	b, err := c.DataPtrUint8()
	if err != nil || len(b) == 0 {
		return 0, 0, 0
	}
	var hist [256]int
	var sum float64
	for _, v := range b {
		hist[v]++
		sum += float64(v)
	}
	at := func(rank int) float64 {
		n := 0
		for v, h := range hist {
			n += h
			if n > rank {
				return float64(v)
			}
		}
		return 255
	}
	return sum / float64(len(b)), at(len(b) / 100), at(len(b) * 99 / 100)
}

func saturatedFraction(bgr gocv.Mat, r image.Rectangle) float64 {
	region := bgr.Region(r)
	defer region.Close()
	mask := gocv.NewMat()
	defer mask.Close()
	gocv.InRangeWithScalar(region, gocv.NewScalar(250, 250, 250, 0), gocv.NewScalar(255, 255, 255, 0), &mask)
	n := r.Dx() * r.Dy()
	if n == 0 {
		return 0
	}
	return float64(gocv.CountNonZero(mask)) / float64(n)
}

// noiseSigma is Immerkaer's fast noise estimate on the gray face box
// (downscaled to at most 256 px so the figure does not depend on resolution
// much): sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N| with
// N = [1 -2 1; -2 4 -2; 1 -2 1], skipping the strongest edges (the 10% of
// largest responses), which are structure rather than noise.
func noiseSigma(img gocv.Mat, box image.Rectangle) float64 {
	if box.Dx() < 8 || box.Dy() < 8 {
		return 0
	}
	region := img.Region(box)
	defer region.Close()
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(region, &gray, gocv.ColorBGRToGray)
	if s := 256.0 / float64(max(box.Dx(), box.Dy())); s < 1 {
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(gray, &small, image.Pt(max(8, int(float64(box.Dx())*s)), max(8, int(float64(box.Dy())*s))), 0, 0, gocv.InterpolationArea)
		gray, small = small, gray
	}
	kernel := gocv.NewMatWithSize(3, 3, gocv.MatTypeCV32F)
	defer kernel.Close()
	for i, v := range []float32{1, -2, 1, -2, 4, -2, 1, -2, 1} {
		kernel.SetFloatAt(i/3, i%3, v)
	}
	resp := gocv.NewMat()
	defer resp.Close()
	gocv.Filter2D(gray, &resp, gocv.MatTypeCV32F, kernel, image.Pt(-1, -1), 0, gocv.BorderReplicate)
	rv, err := resp.DataPtrFloat32()
	if err != nil {
		return 0
	}
	cols := resp.Cols()
	vals := make([]float64, 0, len(rv))
	for y := 1; y < resp.Rows()-1; y++ {
		for x := 1; x < cols-1; x++ {
			vals = append(vals, math.Abs(float64(rv[y*cols+x])))
		}
	}
	if len(vals) == 0 {
		return 0
	}
	sort.Float64s(vals)
	vals = vals[:len(vals)*9/10]
	var sum float64
	for _, v := range vals {
		sum += v
	}
	return math.Sqrt(math.Pi/2) * sum / (6 * float64(len(vals)))
}

// backgroundSignals measures the image outside the face box grown by half
// (at most 512 px on the long side): the density of thin high-contrast
// strokes on a smooth backdrop (pixels far from their 5x5 median where the
// median image is locally flat: the text and logo strokes of a watermark; a
// heuristic, weak on semi-transparent marks) and the gray standard deviation
// (a uniform background is low).
func backgroundSignals(img gocv.Mat, box image.Rectangle) (strokes, std float64) {
	scale := math.Min(1, 512/float64(max(img.Cols(), img.Rows())))
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(img, &gray, gocv.ColorBGRToGray)
	if scale < 1 {
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(gray, &small, image.Pt(max(1, int(float64(img.Cols())*scale)), max(1, int(float64(img.Rows())*scale))), 0, 0, gocv.InterpolationArea)
		gray, small = small, gray
	}
	med := gocv.NewMat()
	defer med.Close()
	gocv.MedianBlur(gray, &med, 5)
	// Local contrast of the median image: a stroke counts only on a smooth
	// backdrop (natural texture and noise are not watermarks).
	medF := gocv.NewMat()
	defer medF.Close()
	med.ConvertTo(&medF, gocv.MatTypeCV32F)
	sq := gocv.NewMat()
	defer sq.Close()
	gocv.Multiply(medF, medF, &sq)
	mean, mean2 := gocv.NewMat(), gocv.NewMat()
	defer mean.Close()
	defer mean2.Close()
	gocv.BoxFilter(medF, &mean, -1, image.Pt(7, 7))
	gocv.BoxFilter(sq, &mean2, -1, image.Pt(7, 7))
	gx := float64(box.Dx()) * 0.5
	gy := float64(box.Dy()) * 0.5
	fx1, fy1 := (float64(box.Min.X)-gx)*scale, (float64(box.Min.Y)-gy)*scale
	fx2, fy2 := (float64(box.Max.X)+gx)*scale, (float64(box.Max.Y)+gy)*scale
	gv, err1 := gray.DataPtrUint8()
	mv, err2 := med.DataPtrUint8()
	m1v, err3 := mean.DataPtrFloat32()
	m2v, err4 := mean2.DataPtrFloat32()
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return 0, 0
	}
	cols := gray.Cols()
	var n, stroke int
	var sum, sum2 float64
	for y := 0; y < gray.Rows(); y++ {
		for x := 0; x < cols; x++ {
			if float64(x) >= fx1 && float64(x) < fx2 && float64(y) >= fy1 && float64(y) < fy2 {
				continue
			}
			i := y*cols + x
			v := float64(gv[i])
			n++
			sum += v
			sum2 += v * v
			if math.Abs(v-float64(mv[i])) > 40 {
				m1, m2 := float64(m1v[i]), float64(m2v[i])
				if m2-m1*m1 < 12*12 {
					stroke++
				}
			}
		}
	}
	if n < 100 {
		return 0, 0
	}
	m := sum / float64(n)
	return float64(stroke) / float64(n), math.Sqrt(math.Max(0, sum2/float64(n)-m*m))
}

func clamp01(v float64) float64 { return math.Max(0, math.Min(1, v)) }

func score(v float64) int {
	if math.IsNaN(v) {
		return 0
	}
	return int(math.Round(math.Max(0, math.Min(100, v))))
}
