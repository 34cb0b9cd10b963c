package mqtt

import (
	"encoding/json"
	"fmt"
)

// Identity events: a camera that identifies faces against a watchlist
// publishes one event per track and person, QoS 1 through the outbox, at
// <prefix>/cameras/<id>/identity, and the person's name becomes the
// retained <prefix>/cameras/<id>/last_person that Home Assistant's "last
// person seen" sensor reads.

// PublishIdentity queues one identity event and sets the retained last person.
func (p *Publisher) PublishIdentity(cameraID string, event any, name string) error {
	if !idPattern.MatchString(cameraID) {
		return fmt.Errorf("mqtt identity: camera id %q: use letters, digits, '-' and '_'", cameraID)
	}
	body, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("mqtt identity: %w", err)
	}
	if err := p.appendTopic("cameras/"+cameraID+"/identity", body); err != nil {
		return fmt.Errorf("mqtt identity: %w", err)
	}
	last, _ := json.Marshal(map[string]string{"name": name})
	return p.setRetained(p.opts.Prefix+"/cameras/"+cameraID+"/last_person", last)
}

// PublishIdentityDiscovery announces the "last person seen" sensor of a camera.
func (p *Publisher) PublishIdentityDiscovery(cam CameraInfo) error {
	if !idPattern.MatchString(cam.ID) {
		return fmt.Errorf("mqtt identity discovery: camera id %q: use letters, digits, '-' and '_'", cam.ID)
	}
	name := cam.Name
	if name == "" {
		name = cam.ID
	}
	node := "imageapid_" + p.opts.DeviceID
	e := haEntity{
		Name:                "Last person seen",
		UniqueID:            node + "_" + cam.ID + "_last_person",
		StateTopic:          p.opts.Prefix + "/cameras/" + cam.ID + "/last_person",
		ValueTemplate:       "{{ value_json.name }}",
		AvailabilityTopic:   p.topicAvailability,
		PayloadAvailable:    availabilityOnline,
		PayloadNotAvailable: availabilityOffline,
		Icon:                "mdi:account-search",
		Device: haDevice{
			Identifiers:  []string{node + "_" + cam.ID},
			Name:         name,
			Manufacturer: "imageapid",
			Model:        "camera on " + p.opts.DeviceID,
		},
		Origin: haOrigin{Name: "imageapid"},
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("mqtt identity discovery: %w", err)
	}
	return p.setRetained(p.opts.DiscoveryPrefix+"/sensor/"+node+"/"+cam.ID+"_last_person/config", b)
}
