package mqtt

import (
	"encoding/json"
	"testing"
	"time"

	"imageapid/internal/testenv"
)

// TestZonesAndLines: each zone's occupancy and each line's crossings are
// retained at their own topics with a Home Assistant sensor each; a zone
// dropped from the config loses its sensor and its count.
func TestZonesAndLines(t *testing.T) {
	brokerURL := brokers[0].start(t)
	live := subscribe(t, brokerURL, "#")
	p := newTestPublisher(t, brokerURL, t.TempDir(), nil)
	prefix := p.Prefix()
	cam := CameraInfo{ID: "front", Zones: []string{"door", "desk"}, Lines: []string{"gate"}}
	if err := p.PublishDiscovery([]CameraInfo{cam}); err != nil {
		t.Fatal(err)
	}
	if err := p.UpdatePlaces("front", map[string]int{"door": 2, "desk": 0}, map[string]LineCount{"gate": {LeftToRight: 3, RightToLeft: 1, Total: 4}}); err != nil {
		t.Fatal(err)
	}
	if err := p.UpdatePlaces("front", map[string]int{"a/b": 1}, nil); err == nil {
		t.Error("a zone name with '/' was accepted")
	}
	doorTopic := prefix + "/cameras/front/zones/door/count"
	testenv.WaitFor(t, 10*time.Second, "the door count", func() bool {
		m, ok := live.last(doorTopic)
		return ok && m.payload == "2"
	})
	snap := retainedSnapshot(t, brokerURL, "#")
	var gate LineCount
	if err := json.Unmarshal([]byte(snap[prefix+"/cameras/front/lines/gate/count"].payload), &gate); err != nil || gate.Total != 4 || gate.LeftToRight != 3 {
		t.Errorf("retained gate count %q (%v)", snap[prefix+"/cameras/front/lines/gate/count"].payload, err)
	}
	for topic, state := range map[string]string{
		"homeassistant/sensor/imageapid_box1/front_zone_door/config": doorTopic,
		"homeassistant/sensor/imageapid_box1/front_zone_desk/config": prefix + "/cameras/front/zones/desk/count",
		"homeassistant/sensor/imageapid_box1/front_line_gate/config": prefix + "/cameras/front/lines/gate/count",
	} {
		var cfg haEntity
		if err := json.Unmarshal([]byte(snap[topic].payload), &cfg); err != nil || cfg.StateTopic != state {
			t.Errorf("discovery %s: %+v (%v)", topic, cfg, err)
		}
	}

	cam.Zones = []string{"desk"}
	if err := p.PublishDiscovery([]CameraInfo{cam}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the door sensor's removal", func() bool {
		m, ok := live.last("homeassistant/sensor/imageapid_box1/front_zone_door/config")
		return ok && m.payload == ""
	})
	snap = retainedSnapshot(t, brokerURL, "#")
	if _, ok := snap[doorTopic]; ok {
		t.Error("the dropped zone's count is still retained")
	}
	if _, ok := snap["homeassistant/sensor/imageapid_box1/front_zone_desk/config"]; !ok {
		t.Error("the kept zone lost its sensor")
	}
}
