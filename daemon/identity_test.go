package main

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/camera"
	"imageapid/estimators/facetemplate"
	"imageapid/internal/testenv"
)

// stillClip writes a video of one photo, n frames at 10 frames/s.
func stillClip(t *testing.T, photo []byte, n int) string {
	t.Helper()
	img, err := gocv.IMDecode(photo, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	path := filepath.Join(t.TempDir(), "still.mp4")
	w, err := gocv.VideoWriterFile(path, "mp4v", 10, img.Cols(), img.Rows(), true)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		w.Write(img)
	}
	w.Close()
	return path
}

func postJSON(t *testing.T, url, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, out)
	}
	return out
}

// TestCameraIdentityOverMosquitto enrols a person, then plays a clip of
// them on a camera identifying against their list and on one identifying
// against a list they are not on: the first publishes one identity event
// for its track and the last-person sensor, the second's track events
// carry "identity": null.
func TestCameraIdentityOverMosquitto(t *testing.T) {
	broker := testenv.StartMosquitto(t, testenv.FreePort(t), "")
	astronaut := testenv.ReadFixture(t, "astronaut.png")
	cfg := testConfig(t)
	cfg.DeviceID = "idbox"
	cfg.MQTT.URL = broker.URL()

	addr, stop := startDaemon(t, cfg)
	waitReady(t, "http://"+addr)
	base := "http://" + addr + "/v1/watchlists"
	p := postJSON(t, base+"/crew/persons", `{"name": "Eileen"}`)
	if code, body := testenv.PostImage(t, base+"/crew/persons/"+p["id"].(string)+"/faces", astronaut, nil); code != 201 {
		t.Fatalf("enrol: %d %s", code, body)
	}
	other := postJSON(t, base+"/others/persons", `{"name": "Somebody"}`)
	net := facetemplate.Networks[facetemplate.DefaultNetwork]
	vec := make([]float32, net.Dim)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range vec {
		vec[i] = float32(r.NormFloat64())
	}
	tpl := base64.StdEncoding.EncodeToString(facetemplate.Encode(net.ID, vec))
	postJSON(t, base+"/others/persons/"+other["id"].(string)+"/faces", `{"$template": "`+tpl+`"}`)
	stop()

	clip := stillClip(t, astronaut, 30)
	cfg.Cameras = []camera.Config{
		{ID: "door", URL: clip, Estimators: []string{detectFaces}, Identify: camera.IdentifyConfig{List: "crew"}},
		{ID: "gate", URL: clip, Estimators: []string{detectFaces}, Identify: camera.IdentifyConfig{List: "others"}},
	}
	msgs := subscribe(t, broker.URL(), "imageapid/idbox/#", "homeassistant/#")
	_, stop = startDaemon(t, cfg)
	defer stop()
	ended := func(cam string) bool {
		for _, m := range msgs() {
			if m.topic == "imageapid/idbox/events" && strings.Contains(m.payload, `"type":"track_end"`) && strings.Contains(m.payload, `"camera_id":"`+cam+`"`) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(60 * time.Second)
	for !(ended("door") && ended("gate")) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if !(ended("door") && ended("gate")) {
		for _, m := range msgs() {
			t.Logf("%s %.300s", m.topic, m.payload)
		}
		t.Fatal("the cameras' tracks did not end within 60 s")
	}
	time.Sleep(300 * time.Millisecond) // the identity event is queued before the track_end that follows it

	var identities []map[string]any
	doorNamed, gateNull, sensor, lastPerson := false, false, false, false
	for _, m := range msgs() {
		switch {
		case m.topic == "imageapid/idbox/cameras/door/identity":
			var ev map[string]any
			json.Unmarshal([]byte(m.payload), &ev)
			identities = append(identities, ev)
		case m.topic == "imageapid/idbox/cameras/gate/identity":
			t.Errorf("an identity event for a face not on the gate's list: %s", m.payload)
		case m.topic == "imageapid/idbox/events" && strings.Contains(m.payload, `"camera_id":"door"`) && strings.Contains(m.payload, `"name":"Eileen"`):
			doorNamed = true
		case m.topic == "imageapid/idbox/events" && strings.Contains(m.payload, `"camera_id":"gate"`) && strings.Contains(m.payload, `"identity":null`):
			gateNull = true
		case strings.HasPrefix(m.topic, "homeassistant/sensor/") && strings.HasSuffix(m.topic, "/door_last_person/config"):
			sensor = true
		case m.topic == "imageapid/idbox/cameras/door/last_person" && strings.Contains(m.payload, "Eileen"):
			lastPerson = true
		}
	}
	if len(identities) != 1 || identities[0]["person_id"] != p["id"] || identities[0]["name"] != "Eileen" || identities[0]["track_id"] == "" {
		t.Fatalf("door identity events: %v; want one for %s", identities, p["id"])
	}
	if !doorNamed || !gateNull || !sensor || !lastPerson {
		t.Errorf("door track events name the person %t, gate events carry identity null %t, HA sensor %t, last_person %t",
			doorNamed, gateNull, sensor, lastPerson)
	}
}
