package api_test

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/internal/testenv"
)

// Section 4 checks 13-20, 26, 27 and 29 (attribute estimators, quality
// assessment, liveness), bad input for each of those services, and accuracy
// floors on ../shared/testdata that fail when a head regresses (a mask model
// answering one class everywhere fails them). Fixtures: face1 = astronaut.png
// (a woman, no mask), no_face = coffee.png, two_faces = astronaut beside its mirror.

const (
	ageSvc      = "/age-estimator"
	genderSvc   = "/gender-estimator"
	emotionSvc  = "/emotion-estimator"
	maskSvc     = "/mask-estimator"
	qaaSvc      = "/quality-assessment-estimator"
	livenessSvc = "/face-detector-liveness-estimator"
	spoofSvc    = "/liveness-anti-spoofing"
	qualLiveSvc = "/quality-liveness-anti-spoofing"
)

var emotionOrder = []string{"ANGRY", "DISGUSTED", "SCARED", "HAPPY", "NEUTRAL", "SAD", "SURPRISED"}

// fitted returns face1's bytes and its fitter object (check 1's output).
func fitted(t *testing.T, url string) ([]byte, map[string]any) {
	t.Helper()
	face1 := testenv.ReadFixture(t, "astronaut.png")
	_, objs := fitterObject(t, postImage(t, url+fitter+"/process/image", face1))
	if len(objs) != 1 {
		t.Fatalf("fitter found %d faces in face1", len(objs))
	}
	return face1, objs[0].(map[string]any)
}

// sampleObjects posts a sample and returns its objects, failing on a non-200.
func sampleObjects(t *testing.T, url string, body map[string]any) []map[string]any {
	t.Helper()
	r := postJSON(t, url, body)
	if r.Status != http.StatusOK {
		t.Fatalf("%s: status %d: %.300s", url, r.Status, r.Body)
	}
	list, ok := r.JSON(t)["objects"].([]any)
	if !ok {
		t.Fatalf("%s: objects is not a list: %.300s", url, r.Body)
	}
	out := make([]map[string]any, len(list))
	for i, o := range list {
		out[i] = o.(map[string]any)
	}
	return out
}

func TestConformanceAttributeEstimators(t *testing.T) {
	url := newServer(t)
	face1, obj := fitted(t, url)
	post := func(svc string, objects []any) []map[string]any {
		return sampleObjects(t, url+svc+"/process/sample", map[string]any{"$image": b64(face1), "objects": objects})
	}
	keepsFitter := func(check string, o map[string]any) {
		for _, k := range []string{"fitter", "angles", "bbox"} {
			if !equalJSON(o[k], obj[k]) {
				t.Errorf("check %s: %q changed: %v -> %v", check, k, obj[k], o[k])
			}
		}
	}

	// Check 13: age, a JSON integer in 0..120 (and plausible for face1).
	o := post(ageSvc, []any{obj})[0]
	keepsFitter("13", o)
	age, ok := o["age"].(float64)
	if !ok || age != math.Trunc(age) || age < 0 || age > 120 {
		t.Errorf("check 13: age %v is not an integer in 0..120", o["age"])
	} else if age < 20 || age > 70 {
		t.Errorf("check 13: face1 (an adult astronaut) is given age %v", age)
	}

	// Check 14: gender.
	o = post(genderSvc, []any{obj})[0]
	keepsFitter("14", o)
	if o["gender"] != "FEMALE" {
		t.Errorf("check 14: face1 (a woman) has gender %v", o["gender"])
	}

	// Check 15: the seven emotions in order, a softmax.
	o = post(emotionSvc, []any{obj})[0]
	keepsFitter("15", o)
	emos, _ := o["emotions"].([]any)
	if len(emos) != 7 {
		t.Fatalf("check 15: %d emotions: %v", len(emos), o["emotions"])
	}
	var sum float64
	for i, e := range emos {
		m := e.(map[string]any)
		c, ok := m["confidence"].(float64)
		if m["emotion"] != emotionOrder[i] || !ok || c < 0 || c > 1 {
			t.Errorf("check 15: item %d is %v, want emotion %s with a confidence in [0,1]", i, m, emotionOrder[i])
		}
		sum += c
	}
	if sum < 0.98 || sum > 1.02 {
		t.Errorf("check 15: confidences sum to %v", sum)
	}

	// Check 16: mask.
	o = post(maskSvc, []any{obj})[0]
	keepsFitter("16", o)
	m, _ := o["mask"].(map[string]any)
	c, okc := m["confidence"].(float64)
	if v, ok := m["value"].(bool); !ok || !okc || c < 0 || c > 1 || v {
		t.Errorf("check 16: face1 (no mask) has mask %v", o["mask"])
	}

	// Check 17: the whole image with objects [{}].
	objs := post(genderSvc, []any{map[string]any{}})
	if len(objs) != 1 || objs[0]["id"] != 0.0 || objs[0]["class"] != "face" || objs[0]["gender"] != "FEMALE" {
		t.Errorf("check 17: objects %v, want one {id:0, class:face, gender:FEMALE}", objs)
	}
	// ... and with no objects at all.
	objs = sampleObjects(t, url+ageSvc+"/process/sample", map[string]any{"$image": b64(face1)})
	if len(objs) != 1 || objs[0]["class"] != "face" || objs[0]["age"] == nil {
		t.Errorf("check 17: no objects gave %v", objs)
	}

	// Check 18: non-face objects pass through unchanged.
	body := map[string]any{"id": 0.0, "class": "body", "bbox": []any{0.0, 0.0, 1.0, 1.0}, "x": 1.0}
	face := map[string]any{}
	for k, v := range obj {
		face[k] = v
	}
	face["id"] = 1
	for _, svc := range []string{ageSvc, genderSvc, emotionSvc, maskSvc} {
		objs := post(svc, []any{body, face})
		if len(objs) != 2 || !equalJSON(objs[0], body) {
			t.Errorf("check 18 %s: body object came back as %v", svc, objs[0])
		}
		if len(objs) == 2 && objs[1]["age"] == nil && objs[1]["gender"] == nil && objs[1]["emotions"] == nil && objs[1]["mask"] == nil {
			t.Errorf("check 18 %s: the face object gained nothing: %v", svc, objs[1])
		}
	}

	// Check 29: a foreign key survives the emotion estimator and QAA.
	face["foo"] = 42
	for _, svc := range []string{emotionSvc, qaaSvc} {
		objs := post(svc, []any{face})
		if objs[0]["foo"] != 42.0 {
			t.Errorf("check 29 %s: foo came back as %v", svc, objs[0]["foo"])
		}
	}
}

// qaaKeys are the 29 quality fields: ints, then bools.
var (
	qaaInts = []string{"totalScore", "sharpnessScore", "illuminationScore", "leftEyeOpennessScore", "rightEyeOpennessScore",
		"maxRotationDeviation", "notMaskedScore", "neutralEmotionScore", "eyesDistance", "marginOuterDeviation",
		"marginInnerDeviation", "noiseScore", "watermarkScore", "backgroundUniformityScore", "dynamicRangeScore"}
	qaaBools = []string{"isSharp", "isEvenlyIlluminated", "noFlare", "isLeftEyeOpened", "isRightEyeOpened",
		"isRotationAcceptable", "notMasked", "isNeutralEmotion", "isEyesDistanceAcceptable", "isMarginsAcceptable",
		"isNotNoisy", "hasWatermark", "isBackgroundUniform", "isDynamicRangeAcceptable"}
)

func qaaOf(t *testing.T, o map[string]any) map[string]any {
	t.Helper()
	q, _ := o["quality"].(map[string]any)
	qaa, ok := q["qaa"].(map[string]any)
	if !ok {
		t.Fatalf("no quality.qaa in %v", o)
	}
	return qaa
}

func TestConformanceQualityAssessment(t *testing.T) {
	url := newServer(t)
	face1, obj := fitted(t, url)

	// Check 19: all 29 keys with their types; totalScore in [0,100].
	o := sampleObjects(t, url+qaaSvc+"/process/sample", map[string]any{"$image": b64(face1), "objects": []any{obj}})[0]
	qaa := qaaOf(t, o)
	if len(qaa) != 29 {
		t.Errorf("check 19: %d qaa keys, want 29: %v", len(qaa), qaa)
	}
	for _, k := range qaaInts {
		v, ok := qaa[k].(float64)
		if !ok || v != math.Trunc(v) {
			t.Errorf("check 19: %s = %v is not an int", k, qaa[k])
		}
	}
	for _, k := range qaaBools {
		if _, ok := qaa[k].(bool); !ok {
			t.Errorf("check 19: %s = %v is not a bool", k, qaa[k])
		}
	}
	if ts, _ := qaa["totalScore"].(float64); ts <= 60 || ts > 100 {
		t.Errorf("check 19: the clean portrait face1 has totalScore %v, want > 60", qaa["totalScore"])
	}
	if qaa["notMasked"] != true || qaa["isSharp"] != true {
		t.Errorf("check 19: face1 notMasked %v isSharp %v, want true", qaa["notMasked"], qaa["isSharp"])
	}

	// Check 20: no objects.
	assertDetail(t, postJSON(t, url+qaaSvc+"/process/sample", map[string]any{"$image": b64(face1)}), 400, "No object were passed")
	assertDetail(t, postJSON(t, url+qaaSvc+"/process/sample", map[string]any{"$image": b64(face1), "objects": []any{}}), 400, "No object were passed")
}

// A masked face (a corpus photo, never testdata) sets mask.value and clears notMasked.
func TestMaskedFace(t *testing.T) {
	dir := testenv.Shared(t, "corpus/mask/with_mask")
	url := newServer(t)
	var tried, masked, notMaskedFalse int
	for i := 0; i < 200 && tried < 5; i += 7 {
		img := readFile(t, filepath.Join(dir, fmt.Sprintf("%05d.jpg", i)))
		_, objs := fitterObject(t, postImage(t, url+fitter+"/process/image", img))
		if len(objs) != 1 {
			continue
		}
		tried++
		o := sampleObjects(t, url+maskSvc+"/process/sample", map[string]any{"$image": b64(img), "objects": objs})[0]
		if m, _ := o["mask"].(map[string]any); m["value"] == true {
			masked++
		}
		q := qaaOf(t, sampleObjects(t, url+qaaSvc+"/process/sample", map[string]any{"$image": b64(img), "objects": objs})[0])
		if q["notMasked"] == false {
			notMaskedFalse++
		}
	}
	if tried < 3 || masked < tried-1 || notMaskedFalse < tried-1 {
		t.Errorf("masked faces: %d found by the fitter, %d with mask.value true, %d with notMasked false", tried, masked, notMaskedFalse)
	}
}

func TestConformanceLiveness(t *testing.T) {
	url := newServer(t)
	face1 := testenv.ReadFixture(t, "astronaut.png")

	// Check 26.
	_, objs := fitterObject(t, postImage(t, url+livenessSvc+"/process/image", face1))
	if len(objs) != 1 {
		t.Fatalf("check 26: %d objects", len(objs))
	}
	o := objs[0].(map[string]any)
	l, _ := o["liveness"].(map[string]any)
	c, ok := l["confidence"].(float64)
	if o["bbox"] == nil || o["confidence"] == nil || !ok || c < 0 || c > 1 ||
		!strings.Contains("REAL FAKE NOT_ENOUGH_DATA", fmt.Sprint(l["value"])) || l["value"] == "" {
		t.Errorf("check 26: object %v", o)
	}

	// Check 27.
	assertDetail(t, postImage(t, url+qualLiveSvc+"/process/image", twoFaces(t)), 400, "More than one face detected")
	_, objs = fitterObject(t, postImage(t, url+qualLiveSvc+"/process/image", face1))
	if len(objs) != 1 {
		t.Fatalf("check 27: %d objects for face1", len(objs))
	}
	o = objs[0].(map[string]any)
	if l, _ := o["liveness"].(map[string]any); l["value"] != "REAL" && l["value"] != "FAKE" || o["class"] != "face" {
		t.Errorf("check 27: face1 object %v", o)
	}
	_, objs = fitterObject(t, postImage(t, url+qualLiveSvc+"/process/image", testenv.ReadFixture(t, "coffee.png")))
	for _, x := range objs {
		if _, has := x.(map[string]any)["liveness"]; has {
			t.Errorf("check 27: no_face gave liveness: %v", x)
		}
	}
	// A heavily blurred face is refused for low quality.
	blurred := jpegOf(t, face1, blurBy(6))
	r := postImage(t, url+qualLiveSvc+"/process/image", blurred)
	if r.Status == http.StatusBadRequest {
		var v struct{ Detail string }
		if err := jsonUnmarshal(r.Body, &v); err != nil || !strings.HasPrefix(v.Detail, "Low image quality. Calculated score value (") ||
			!strings.HasSuffix(v.Detail, ") is less than the threshold (30)") {
			t.Errorf("blurred face1: detail %q", v.Detail)
		}
	} else if _, objs := fitterObject(t, r); len(objs) != 0 {
		t.Errorf("blurred face1: status %d with a face, want 400 low quality: %.300s", r.Status, r.Body)
	}

	// liveness-anti-spoofing: every passed object gets the verdict; none gives one face object.
	objs2 := sampleObjects(t, url+spoofSvc+"/process/sample", map[string]any{"$image": b64(face1),
		"objects": []any{map[string]any{"class": "body", "x": 1}, map[string]any{"class": "face"}}})
	for _, x := range objs2 {
		if l, _ := x["liveness"].(map[string]any); l["value"] != "REAL" && l["value"] != "FAKE" {
			t.Errorf("anti-spoofing: object %v has no verdict", x)
		}
	}
	_, objs = fitterObject(t, postImage(t, url+spoofSvc+"/process/image", face1))
	if len(objs) != 1 || objs[0].(map[string]any)["class"] != "face" {
		t.Errorf("anti-spoofing without objects: %v", objs)
	}
}

func TestAttributeBadInput(t *testing.T) {
	url := newServer(t)
	face1, obj := fitted(t, url)
	services := []string{ageSvc, genderSvc, emotionSvc, maskSvc, qaaSvc}
	for _, svc := range services {
		u := url + svc + "/process/sample"
		// objects not a list
		assertValidation(t, postJSON(t, u, map[string]any{"$image": b64(face1), "objects": map[string]any{"a": 1}}), "objects")
		// a bbox that is not numbers, or misses the image once clamped
		for _, bb := range []any{[]any{"NaN", 0, 1, 1}, []any{0.1, 0.1, 0.5}, []any{1.2, 1.2, 1.5, 1.6}} {
			r := postJSON(t, u, map[string]any{"$image": b64(face1), "objects": []any{map[string]any{"class": "face", "bbox": bb}}})
			if r.Status != http.StatusBadRequest {
				t.Errorf("%s bbox %v: status %d, want 400: %.200s", svc, bb, r.Status, r.Body)
			}
		}
		// an out-of-range bbox is clamped and the estimate runs
		big := map[string]any{"class": "face", "bbox": []any{-0.5, -0.2, 1.5, 1.3}, "$template": "AAAA"}
		objs := sampleObjects(t, u, map[string]any{"$image": b64(face1), "objects": []any{big}})
		if len(objs) != 1 || len(objs[0]) <= 3 || objs[0]["$template"] != "AAAA" {
			t.Errorf("%s clamped bbox with a $template: %v", svc, objs)
		}
	}
	// 50 faces in one request: every one gets its attribute.
	many := make([]any, 50)
	for i := range many {
		x, y := float64(i%10)/10, float64(i/10)/5
		many[i] = map[string]any{"class": "face", "bbox": []any{x, y, x + 0.1, y + 0.2}}
	}
	many[0] = obj
	objs := sampleObjects(t, url+genderSvc+"/process/sample", map[string]any{"$image": b64(face1), "objects": many})
	if len(objs) != 50 {
		t.Fatalf("50 faces: %d objects back", len(objs))
	}
	for i, o := range objs {
		if g := o["gender"]; g != "MALE" && g != "FEMALE" {
			t.Errorf("50 faces: object %d has gender %v", i, g)
		}
	}
	// The estimators offer no image route (check 12).
	for _, svc := range []string{ageSvc, genderSvc, emotionSvc, maskSvc, qaaSvc} {
		if r := postImage(t, url+svc+"/process/image", face1); r.Status != http.StatusNotFound {
			t.Errorf("%s/process/image: status %d, want 404", svc, r.Status)
		}
	}
}

// Accuracy floors on ../shared/testdata (evaluation only: nothing is fitted
// or tuned on it). The floors sit below the measured figures (make eval) so
// that only a real regression fails.
func TestAttributeAccuracyFloors(t *testing.T) {
	dir := testenv.Shared(t, "testdata")
	if testing.Short() {
		t.Skip("accuracy run")
	}
	url := newServer(t)
	var m struct {
		Files []struct {
			Path   string `json:"path"`
			Labels struct {
				Age      *float64 `json:"age"`
				Gender   *string  `json:"gender"`
				Mask     *bool    `json:"mask"`
				Emotion  *string  `json:"emotion"`
				Liveness *string  `json:"liveness"`
			} `json:"labels"`
		} `json:"files"`
	}
	if err := jsonUnmarshal(readFile(t, filepath.Join(dir, "manifest.json")), &m); err != nil {
		t.Fatal(err)
	}
	var ageErr float64
	var nAge, nGender, okGender, nMask, okMask, maskTrue, nEmo, okEmo int
	// errors[service] = {attacks passed, attacks, reals rejected, reals}
	errors := map[string]*[4]int{livenessSvc: {}, spoofSvc: {}}
	emotions := map[string]string{"angry": "ANGRY", "disgust": "DISGUSTED", "fear": "SCARED", "happy": "HAPPY",
		"neutral": "NEUTRAL", "sad": "SAD", "surprise": "SURPRISED"}
	for _, f := range m.Files {
		l := f.Labels
		if l.Age == nil && l.Gender == nil && l.Mask == nil && l.Emotion == nil && l.Liveness == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if l.Liveness != nil { // the original bytes: print and screen artefacts matter
			for svc, e := range errors {
				o := sampleObjects(t, url+svc+"/process/sample", map[string]any{"$image": b64(b)})
				real := len(o) > 0 && o[0]["liveness"].(map[string]any)["value"] == "REAL"
				if *l.Liveness == "FAKE" {
					e[1]++
					if real {
						e[0]++
					}
				} else {
					e[3]++
					if !real {
						e[2]++
					}
				}
			}
			continue
		}
		body := map[string]any{"$image": b64(jpegOf(t, b, nil)), "objects": []any{map[string]any{}}}
		if want, ok := emotions[deref(l.Emotion)]; ok {
			o := sampleObjects(t, url+emotionSvc+"/process/sample", body)[0]
			nEmo++
			if o["emotion"] == want {
				okEmo++
			}
		}
		if l.Age != nil {
			o := sampleObjects(t, url+ageSvc+"/process/sample", body)[0]
			ageErr += math.Abs(o["age"].(float64) - *l.Age)
			nAge++
		}
		if l.Gender != nil {
			o := sampleObjects(t, url+genderSvc+"/process/sample", body)[0]
			nGender++
			if strings.EqualFold(o["gender"].(string), *l.Gender) {
				okGender++
			}
		}
		if l.Mask != nil {
			o := sampleObjects(t, url+maskSvc+"/process/sample", body)[0]
			v := o["mask"].(map[string]any)["value"].(bool)
			nMask++
			if v == *l.Mask {
				okMask++
			}
			if v {
				maskTrue++
			}
		}
	}
	t.Logf("age MAE %.2f (n=%d), gender %.3f (n=%d), mask %.3f (n=%d), emotion %.3f (n=%d)", ageErr/float64(nAge), nAge,
		float64(okGender)/float64(nGender), nGender, float64(okMask)/float64(nMask), nMask, float64(okEmo)/float64(nEmo), nEmo)
	// Measured 4.67 years and 47/49 with face-api's estimates in the heads;
	// the heads before them (6.69, 45/49) fail these floors.
	if nAge < 20 || ageErr/float64(nAge) > 6 {
		t.Errorf("age MAE %.2f over %d faces, floor 6", ageErr/float64(max(nAge, 1)), nAge)
	}
	if nGender < 20 || float64(okGender)/float64(nGender) < 0.93 {
		t.Errorf("gender accuracy %d/%d, floor 0.93", okGender, nGender)
	}
	if nEmo < 20 || float64(okEmo)/float64(nEmo) < 0.32 {
		t.Errorf("emotion accuracy %d/%d, floor 0.32", okEmo, nEmo)
	}
	// Liveness ceilings: 20 of the 23 testdata liveness images are
	// CelebA-Spoof, the one source the heads were once fitted on alone (ACER
	// 0.042 and 0.087 here, but about 0.5 on every other corpus source).
	// The heads are now fitted on all nine corpus sources and chosen by
	// their ACER on each source held out in turn (0.29 and 0.27 against
	// 0.49 and 0.48; `heads liveness-sources`): held-out cameras were
	// preferred to this CelebA-heavy set, where they measure 0.299 and
	// 0.254 (make eval). The ceilings sit just above those.
	ceiling := map[string]float64{livenessSvc: 0.33, spoofSvc: 0.29}
	for svc, e := range errors {
		apcer, bpcer := float64(e[0])/float64(max(e[1], 1)), float64(e[2])/float64(max(e[3], 1))
		t.Logf("%s: APCER %.3f BPCER %.3f ACER %.3f (%d attacks, %d real)", svc, apcer, bpcer, (apcer+bpcer)/2, e[1], e[3])
		if e[1] < 5 || e[3] < 5 || (apcer+bpcer)/2 > ceiling[svc] {
			t.Errorf("%s: ACER %.3f over %d attacks and %d real faces, ceiling %.2f", svc, (apcer+bpcer)/2, e[1], e[3], ceiling[svc])
		}
	}
	if nMask < 10 || float64(okMask)/float64(nMask) < 0.80 || maskTrue == 0 || maskTrue == nMask {
		t.Errorf("mask accuracy %d/%d with %d predicted masked, floor 0.80 and both classes", okMask, nMask, maskTrue)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// blurBy returns a jpegOf transform with a Gaussian blur of sigma pixels.
func blurBy(sigma float64) func(gocv.Mat) gocv.Mat {
	return func(m gocv.Mat) gocv.Mat {
		out := gocv.NewMat()
		gocv.GaussianBlur(m, &out, image.Pt(0, 0), sigma, sigma, gocv.BorderReflect)
		return out
	}
}
