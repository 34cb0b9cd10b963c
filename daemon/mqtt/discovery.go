package mqtt

import (
	"encoding/json"
	"fmt"
	"slices"
)

// CameraInfo is what Home Assistant discovery needs to know about a camera.
type CameraInfo struct {
	ID   string // as in <prefix>/cameras/<id>/...
	Name string // shown in Home Assistant [ID]
	// Zones and Lines name the camera's zones and counting lines: each gets
	// a sensor (occupancy, crossings).
	Zones, Lines []string
}

// haEntity is a Home Assistant MQTT discovery config (the fields we use).
type haEntity struct {
	Name                string   `json:"name"`
	UniqueID            string   `json:"unique_id"`
	StateTopic          string   `json:"state_topic"`
	ValueTemplate       string   `json:"value_template"`
	AvailabilityTopic   string   `json:"availability_topic"`
	PayloadAvailable    string   `json:"payload_available"`
	PayloadNotAvailable string   `json:"payload_not_available"`
	StateClass          string   `json:"state_class,omitempty"`
	DeviceClass         string   `json:"device_class,omitempty"`
	PayloadOn           string   `json:"payload_on,omitempty"`
	PayloadOff          string   `json:"payload_off,omitempty"`
	Icon                string   `json:"icon,omitempty"`
	Device              haDevice `json:"device"`
	Origin              haOrigin `json:"origin"`
}

type haDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
}

type haOrigin struct {
	Name string `json:"name"`
}

// PublishDiscovery announces each camera to Home Assistant as a device with a
// faces sensor, a people sensor and a presence binary sensor, all reading
// <prefix>/cameras/<id>/counts and available while <prefix>/availability is
// "online". Cameras announced by an earlier call and missing now are removed
// (empty retained configs), along with their retained state and counts.
func (p *Publisher) PublishDiscovery(cameras []CameraInfo) error {
	type msg struct {
		topic   string
		payload []byte
	}
	var msgs []msg
	wanted := make(map[string]bool, len(cameras))
	for _, cam := range cameras {
		if !idPattern.MatchString(cam.ID) {
			return fmt.Errorf("mqtt discovery: camera id %q: use letters, digits, '-' and '_'", cam.ID)
		}
		if wanted[cam.ID] {
			return fmt.Errorf("mqtt discovery: camera id %q listed twice", cam.ID)
		}
		wanted[cam.ID] = true
		for _, n := range append(slices.Clone(cam.Zones), cam.Lines...) {
			if !idPattern.MatchString(n) {
				return fmt.Errorf("mqtt discovery: camera %s zone or line %q: use letters, digits, '-' and '_'", cam.ID, n)
			}
		}
		for _, e := range p.discoveryEntities(cam) {
			body, err := json.Marshal(e.config)
			if err != nil {
				return fmt.Errorf("mqtt discovery %s: %w", cam.ID, err)
			}
			msgs = append(msgs, msg{e.topic, body})
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.prunePlacesLocked(cameras)
	for id := range p.discovered {
		if wanted[id] {
			continue
		}
		for _, e := range p.discoveryEntities(CameraInfo{ID: id}) {
			p.setRetainedLocked(e.topic, nil)
		}
		p.setRetainedLocked(p.cameraTopic(id, "state"), nil)
		p.setRetainedLocked(p.cameraTopic(id, "counts"), nil)
		delete(p.counts, id)
		delete(p.discovered, id)
	}
	for _, m := range msgs {
		p.setRetainedLocked(m.topic, m.payload)
	}
	for id := range wanted {
		p.discovered[id] = true
	}
	p.signal()
	return nil
}

type discoveryEntity struct {
	topic  string
	config haEntity
}

func (p *Publisher) discoveryEntities(cam CameraInfo) []discoveryEntity {
	name := cam.Name
	if name == "" {
		name = cam.ID
	}
	node := "imageapid_" + p.opts.DeviceID
	base := node + "_" + cam.ID
	common := haEntity{
		StateTopic:          p.cameraTopic(cam.ID, "counts"),
		AvailabilityTopic:   p.topicAvailability,
		PayloadAvailable:    availabilityOnline,
		PayloadNotAvailable: availabilityOffline,
		Device: haDevice{
			Identifiers:  []string{base},
			Name:         name,
			Manufacturer: "imageapid",
			Model:        "camera on " + p.opts.DeviceID,
		},
		Origin: haOrigin{Name: "imageapid"},
	}
	faces := common
	faces.Name, faces.UniqueID = "Faces", base+"_faces"
	faces.ValueTemplate, faces.StateClass, faces.Icon = "{{ value_json.faces }}", "measurement", "mdi:face-recognition"
	people := common
	people.Name, people.UniqueID = "People", base+"_people"
	people.ValueTemplate, people.StateClass, people.Icon = "{{ value_json.people }}", "measurement", "mdi:account-group"
	presence := common
	presence.Name, presence.UniqueID = "Presence", base+"_presence"
	presence.ValueTemplate = "{{ 'ON' if value_json.presence else 'OFF' }}"
	presence.DeviceClass, presence.PayloadOn, presence.PayloadOff = "occupancy", "ON", "OFF"

	topic := func(component, object string) string {
		return p.opts.DiscoveryPrefix + "/" + component + "/" + node + "/" + cam.ID + "_" + object + "/config"
	}
	out := []discoveryEntity{
		{topic("sensor", "faces"), faces},
		{topic("sensor", "people"), people},
		{topic("binary_sensor", "presence"), presence},
	}
	for _, z := range cam.Zones {
		e := common
		e.Name, e.UniqueID = z+" occupancy", base+"_zone_"+z
		e.StateTopic = p.zoneTopic(cam.ID, z)
		e.ValueTemplate, e.StateClass, e.Icon = "{{ value | int }}", "measurement", "mdi:account-multiple"
		out = append(out, discoveryEntity{topic("sensor", "zone_"+z), e})
	}
	for _, l := range cam.Lines {
		e := common
		e.Name, e.UniqueID = l+" crossings", base+"_line_"+l
		e.StateTopic = p.lineTopic(cam.ID, l)
		e.ValueTemplate, e.StateClass, e.Icon = "{{ value_json.total }}", "total_increasing", "mdi:counter"
		out = append(out, discoveryEntity{topic("sensor", "line_"+l), e})
	}
	return out
}
