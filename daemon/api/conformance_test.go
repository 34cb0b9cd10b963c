package api_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"math"
	"net/http"
	"strings"
	"testing"

	"imageapid/internal/testenv"
)

// The numbered checks of section 4 of the Image API spec that the fitter and
// the HTTP surface answer. Fixtures: face1 = astronaut.png (one frontal
// face), two_faces = astronaut beside its mirror image, no_face = coffee.png.

const fitter = "/face-detector-face-fitter"

func fitterObject(t *testing.T, r response) (map[string]any, []any) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	v := r.JSON(t)
	objs, ok := v["objects"].([]any)
	if !ok {
		t.Fatalf("objects is not a list: %s", r.Body)
	}
	if len(objs) == 0 {
		return v, objs
	}
	return v, objs
}

func nums(t *testing.T, v any, n int) []float64 {
	t.Helper()
	list, ok := v.([]any)
	if !ok || len(list) != n {
		t.Fatalf("want a list of %d numbers, got %v", n, v)
	}
	out := make([]float64, n)
	for i, x := range list {
		f, ok := x.(float64)
		if !ok {
			t.Fatalf("item %d is not a number: %v", i, x)
		}
		out[i] = f
	}
	return out
}

func TestConformanceFitter(t *testing.T) {
	url := newServer(t)
	face1 := testenv.ReadFixture(t, "astronaut.png")
	const W, H = 512, 512

	// Check 1: image route.
	top, objs := fitterObject(t, postImage(t, url+fitter+"/process/image", face1))
	echo, err := base64.StdEncoding.DecodeString(top["$image"].(string))
	if err != nil || !bytes.Equal(echo, face1) {
		t.Fatalf("check 1: $image does not echo the upload")
	}
	if len(objs) != 1 {
		t.Fatalf("check 1: want 1 face, got %d", len(objs))
	}
	o := objs[0].(map[string]any)
	if o["id"] != 0.0 || o["class"] != "face" {
		t.Errorf("check 1: id/class = %v/%v", o["id"], o["class"])
	}
	if c, _ := o["confidence"].(float64); c < 0 || c > 1 {
		t.Errorf("check 1: confidence %v", o["confidence"])
	}
	bbox := nums(t, o["bbox"], 4)
	for _, b := range bbox {
		if b < 0 || b > 1 {
			t.Errorf("check 1: bbox %v not normalized", bbox)
		}
	}
	if !(bbox[0] < bbox[2] && bbox[1] < bbox[3]) {
		t.Errorf("check 1: bbox %v corners out of order", bbox)
	}
	fit := o["fitter"].(map[string]any)
	if fit["fitter_type"] != "fda" {
		t.Errorf("check 1: fitter_type %v", fit["fitter_type"])
	}
	kp := nums(t, fit["keypoints"], 63)
	le, re := nums(t, fit["left_eye"], 2), nums(t, fit["right_eye"], 2)
	angles := o["angles"].(map[string]any)
	for _, k := range []string{"yaw", "pitch", "roll"} {
		a, ok := angles[k].(float64)
		if !ok || math.Abs(a) > 180 {
			t.Errorf("check 1: angle %s = %v", k, angles[k])
		}
	}

	// Check 2: keypoints are pixels, mostly inside the grown bbox, eyes are points 7 and 10.
	inside := 0
	gx, gy := (bbox[2]-bbox[0])*0.25, (bbox[3]-bbox[1])*0.25
	for i := 0; i < 21; i++ {
		x, y := kp[3*i], kp[3*i+1]
		if x < 0 || x > W || y < 0 || y > H {
			t.Errorf("check 2: point %d (%.1f, %.1f) outside the image", i, x, y)
		}
		if x >= (bbox[0]-gx)*W && x <= (bbox[2]+gx)*W && y >= (bbox[1]-gy)*H && y <= (bbox[3]+gy)*H {
			inside++
		}
	}
	if inside < 11 {
		t.Errorf("check 2: only %d of 21 points inside the bbox grown by 25%%", inside)
	}
	if math.Abs(le[0]-kp[21]) > 1e-3 || math.Abs(le[1]-kp[22]) > 1e-3 || math.Abs(re[0]-kp[30]) > 1e-3 || math.Abs(re[1]-kp[31]) > 1e-3 {
		t.Errorf("check 2: left_eye %v / right_eye %v are not points 7 and 10", le, re)
	}
	if le[0] >= re[0] {
		t.Errorf("check 2: left_eye x %.1f should be left of right_eye x %.1f (image left)", le[0], re[0])
	}

	// Check 3: sample route gives the same result.
	_, objs3 := fitterObject(t, postJSON(t, url+fitter+"/process/sample", map[string]any{"$image": b64(face1)}))
	if len(objs3) != 1 {
		t.Fatalf("check 3: want 1 face, got %d", len(objs3))
	}
	bbox3 := nums(t, objs3[0].(map[string]any)["bbox"], 4)
	for i := range bbox {
		if math.Abs(bbox[i]-bbox3[i]) > 1e-6 {
			t.Errorf("check 3: bbox %v vs image route %v", bbox3, bbox)
		}
	}
	// Optional versioned check: /v1/ matches.
	_, objsV1 := fitterObject(t, postImage(t, url+fitter+"/v1/process/image", face1))
	if len(objsV1) != 1 || !equalJSON(objsV1[0], objs[0]) {
		t.Errorf("v1 route differs from the unversioned one")
	}

	// Check 4: no face.
	_, objs4 := fitterObject(t, postImage(t, url+fitter+"/process/image", testenv.ReadFixture(t, "coffee.png")))
	if len(objs4) != 0 {
		t.Errorf("check 4: coffee.png gave %d faces", len(objs4))
	}

	// Check 5: two faces.
	_, objs5 := fitterObject(t, postImage(t, url+fitter+"/process/image", twoFaces(t)))
	if len(objs5) != 2 {
		t.Fatalf("check 5: want 2 faces, got %d", len(objs5))
	}
	ids := map[float64]bool{}
	for _, o := range objs5 {
		ids[o.(map[string]any)["id"].(float64)] = true
	}
	if !ids[0] || !ids[1] || equalJSON(objs5[0].(map[string]any)["bbox"], objs5[1].(map[string]any)["bbox"]) {
		t.Errorf("check 5: ids %v, bboxes must differ", ids)
	}
}

func TestConformanceErrors(t *testing.T) {
	url := newServer(t)
	face1 := testenv.ReadFixture(t, "astronaut.png")

	// Check 6: missing form part.
	ct, body := multipartBody(t, "file", face1)
	r := do(t, http.MethodPost, url+fitter+"/process/image", ct, bytes.NewReader(body))
	assertValidation(t, r, "image")

	// Check 7: missing $image.
	assertValidation(t, postJSON(t, url+fitter+"/process/sample", map[string]any{}), "$image")

	// Check 8: bad base64.
	assertDetail(t, postJSON(t, url+fitter+"/process/sample", map[string]any{"$image": "@@@not-base64@@@"}),
		400, "Failed to decode base64 string")

	// Check 9: undecodable image, both routes.
	junk := make([]byte, 4096)
	rand.Read(junk)
	assertDetail(t, postJSON(t, url+fitter+"/process/sample", map[string]any{"$image": b64(junk)}),
		400, "This image format is not supported")
	assertDetail(t, postImage(t, url+fitter+"/process/image", junk), 400, "This image format is not supported")

	// Check 10: body limit.
	big := bytes.Repeat([]byte("A"), int(testConfig.MaxBodyBytes)+1)
	assertDetail(t, do(t, http.MethodPost, url+fitter+"/process/sample", "application/json", bytes.NewReader(big)),
		400, "Request body size is too large")

	// Check 11: method and path.
	assertDetail(t, do(t, http.MethodGet, url+fitter+"/process/image", "", nil), 405, "Method Not Allowed")
	assertDetail(t, do(t, http.MethodPost, url+fitter+"/process/nope", "application/json", strings.NewReader("{}")), 404, "Not Found")

	// Check 12: no image route for services that take objects.
	for _, svc := range []string{"quality-assessment-estimator", "age-estimator", "gender-estimator", "emotion-estimator", "mask-estimator", "verify-matcher"} {
		assertDetail(t, postImage(t, url+"/"+svc+"/process/image", face1), 404, "Not Found")
	}
}
