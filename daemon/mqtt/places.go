package mqtt

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// LineCount is how many tracks crossed a counting line each way.
type LineCount struct {
	LeftToRight int `json:"left_to_right"`
	RightToLeft int `json:"right_to_left"`
	Total       int `json:"total"`
}

func (p *Publisher) zoneTopic(id, zone string) string {
	return p.cameraTopic(id, "zones/"+zone+"/count")
}
func (p *Publisher) lineTopic(id, line string) string {
	return p.cameraTopic(id, "lines/"+line+"/count")
}

// UpdatePlaces sets the retained occupancy of camera id's zones and the
// crossing counts of its lines; a value that did not change is not sent again.
func (p *Publisher) UpdatePlaces(id string, zones map[string]int, lines map[string]LineCount) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("mqtt camera id %q: use letters, digits, '-' and '_'", id)
	}
	type msg struct {
		topic   string
		payload []byte
	}
	var msgs []msg
	for z, n := range zones {
		if !idPattern.MatchString(z) {
			return fmt.Errorf("mqtt camera %s zone %q: use letters, digits, '-' and '_'", id, z)
		}
		msgs = append(msgs, msg{p.zoneTopic(id, z), []byte(strconv.Itoa(n))})
	}
	for l, c := range lines {
		if !idPattern.MatchString(l) {
			return fmt.Errorf("mqtt camera %s line %q: use letters, digits, '-' and '_'", id, l)
		}
		body, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("mqtt camera %s line %s: %w", id, l, err)
		}
		msgs = append(msgs, msg{p.lineTopic(id, l), body})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.placeTopics == nil {
		p.placeTopics = map[string]map[string]bool{}
	}
	if p.placeTopics[id] == nil {
		p.placeTopics[id] = map[string]bool{}
	}
	for _, m := range msgs {
		p.placeTopics[id][m.topic] = true
		p.setRetainedLocked(m.topic, m.payload)
	}
	p.signal()
	return nil
}

// prunePlacesLocked clears the retained zone and line messages (counts and
// discovery configs) of zones, lines and cameras no longer configured.
func (p *Publisher) prunePlacesLocked(cameras []CameraInfo) {
	wanted := map[string]bool{}
	for _, cam := range cameras {
		for _, e := range p.discoveryEntities(cam) {
			wanted[e.topic] = true
		}
		for _, z := range cam.Zones {
			wanted[p.zoneTopic(cam.ID, z)] = true
		}
		for _, l := range cam.Lines {
			wanted[p.lineTopic(cam.ID, l)] = true
		}
	}
	if p.placeTopics == nil {
		p.placeTopics = map[string]map[string]bool{}
	}
	for id, topics := range p.placeTopics {
		for topic := range topics {
			if !wanted[topic] {
				p.setRetainedLocked(topic, nil)
				delete(topics, topic)
			}
		}
		if len(topics) == 0 {
			delete(p.placeTopics, id)
		}
	}
	for _, cam := range cameras {
		if len(cam.Zones)+len(cam.Lines) == 0 {
			continue
		}
		if p.placeTopics[cam.ID] == nil {
			p.placeTopics[cam.ID] = map[string]bool{}
		}
		for _, e := range p.discoveryEntities(cam)[3:] { // past faces, people and presence
			p.placeTopics[cam.ID][e.topic] = true
		}
	}
}
