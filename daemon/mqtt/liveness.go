package mqtt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Liveness results: each finished kiosk session goes once, QoS 1, through
// the outbox to <prefix>/liveness/<session_id>, and its summary becomes the
// retained <prefix>/liveness/last that Home Assistant's "last liveness
// result" sensor reads.
//
// Outbox records are event payloads (JSON objects, so their first byte is
// '{'); a record for another topic starts with a zero byte, the topic's
// length (u16, little-endian) and the topic below the prefix.
const topicRecordMark = 0

// PublishLiveness queues one finished session's result for
// <prefix>/liveness/<sessionID> (durably, like an event) and sets the
// retained last result.
func (p *Publisher) PublishLiveness(sessionID string, result any, summary any) error {
	if !idPattern.MatchString(sessionID) {
		return fmt.Errorf("mqtt liveness: session id %q: use letters, digits, '-' and '_'", sessionID)
	}
	body, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("mqtt liveness: %w", err)
	}
	last, err := json.Marshal(summary)
	if err != nil {
		return fmt.Errorf("mqtt liveness: %w", err)
	}
	if err := p.appendTopic("liveness/"+sessionID, body); err != nil {
		return fmt.Errorf("mqtt liveness: %w", err)
	}
	return p.setRetained(p.opts.Prefix+"/liveness/last", last)
}

// appendTopic queues payload for <prefix>/<sub> through the outbox.
func (p *Publisher) appendTopic(sub string, payload []byte) error {
	if len(sub) > 1024 {
		return errors.New("topic too long")
	}
	rec := make([]byte, 3+len(sub)+len(payload))
	rec[0] = topicRecordMark
	binary.LittleEndian.PutUint16(rec[1:3], uint16(len(sub)))
	copy(rec[3:], sub)
	copy(rec[3+len(sub):], payload)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.outbox.Append(rec); err != nil {
		return err
	}
	p.signal()
	return nil
}

// recordTopic is the topic and payload of an outbox record.
func (p *Publisher) recordTopic(rec []byte) (string, []byte) {
	if len(rec) >= 3 && rec[0] == topicRecordMark {
		n := int(binary.LittleEndian.Uint16(rec[1:3]))
		if 3+n <= len(rec) {
			return p.opts.Prefix + "/" + string(rec[3:3+n]), rec[3+n:]
		}
	}
	return p.topicEvents, rec
}

// LivenessSummary is the retained last result.
type LivenessSummary struct {
	SessionID string    `json:"session_id"`
	Status    string    `json:"status"`
	Value     string    `json:"value"`
	Reason    string    `json:"reason,omitempty"`
	Finished  time.Time `json:"finished"`
}

// PublishLivenessDiscovery announces the box's "last liveness result"
// sensor to Home Assistant.
func (p *Publisher) PublishLivenessDiscovery() error {
	node := "imageapid_" + p.opts.DeviceID
	e := haEntity{
		Name:                "Last liveness result",
		UniqueID:            node + "_liveness_last",
		StateTopic:          p.opts.Prefix + "/liveness/last",
		ValueTemplate:       "{{ value_json.value }}",
		AvailabilityTopic:   p.topicAvailability,
		PayloadAvailable:    availabilityOnline,
		PayloadNotAvailable: availabilityOffline,
		Icon:                "mdi:face-recognition",
		Device: haDevice{
			Identifiers:  []string{node + "_kiosk"},
			Name:         "Kiosk " + p.opts.DeviceID,
			Manufacturer: "imageapid",
			Model:        "liveness kiosk on " + p.opts.DeviceID,
		},
		Origin: haOrigin{Name: "imageapid"},
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("mqtt liveness discovery: %w", err)
	}
	return p.setRetained(p.opts.DiscoveryPrefix+"/sensor/"+node+"/liveness_last/config", b)
}
