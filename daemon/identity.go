package main

import (
	"sync"
	"time"

	"imageapid/camera"
	"imageapid/ui"
	"imageapid/watchlist"
)

// announced is, per live track, the persons an identity event was published
// for, so that a person lingering in front of a camera is announced once
// per track (and again only if the track's identity changes to someone new).
type announced struct {
	mu     sync.Mutex
	tracks map[string]map[string]bool // camera/track -> person ids
}

func newAnnounced() *announced { return &announced{tracks: map[string]map[string]bool{}} }

// first reports whether person was not yet announced for the track, and
// records it; a track_end forgets the track.
func (a *announced) first(e camera.Event, personID string) bool {
	key := e.CameraID + "/" + e.TrackID
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.Type == camera.TrackEnd {
		seen := a.tracks[key][personID]
		delete(a.tracks, key)
		return !seen
	}
	if a.tracks[key] == nil {
		a.tracks[key] = map[string]bool{}
	}
	if a.tracks[key][personID] {
		return false
	}
	a.tracks[key][personID] = true
	return true
}

func (a *announced) forget(e camera.Event) {
	a.mu.Lock()
	delete(a.tracks, e.CameraID+"/"+e.TrackID)
	a.mu.Unlock()
}

// identityEvent is the payload at <prefix>/cameras/<id>/identity.
type identityEvent struct {
	Type     string     `json:"type"` // "identity"
	CameraID string     `json:"camera_id"`
	TrackID  string     `json:"track_id"`
	EventID  string     `json:"track_event_id"` // the track event that carried the identity
	PersonID string     `json:"person_id"`
	Name     string     `json:"name"`
	Score    float64    `json:"score"`
	FAR      float64    `json:"fa_r"`
	Distance float64    `json:"distance"`
	BBox     camera.Box `json:"bbox"`
	Time     time.Time  `json:"time"`
}

// nameTrack keeps the name a track's events carry for the previews.
func (ap *appliance) nameTrack(e camera.Event) {
	if e.Type == camera.TrackEnd {
		ap.names.Forget(e.TrackID)
		return
	}
	if id, _ := e.Attributes["identity"].(*watchlist.Identity); id != nil {
		ap.names.Set(e.TrackID, id.Name)
	}
}

// previewOptions are the camera previews' bounds, writing identified
// tracks' names.
func previewOptions(ap *appliance) ui.StreamOptions {
	o := ui.DefaultStreamOptions()
	o.Names = ap.names
	return o
}

// publishIdentity publishes an identity event the first time a track's
// attributes name a person.
func (ap *appliance) publishIdentity(e camera.Event) error {
	id, _ := e.Attributes["identity"].(*watchlist.Identity)
	if id == nil {
		if e.Type == camera.TrackEnd {
			ap.announced.forget(e)
		}
		return nil
	}
	if !ap.announced.first(e, id.PersonID) {
		return nil
	}
	return ap.pub.PublishIdentity(e.CameraID, identityEvent{Type: "identity", CameraID: e.CameraID, TrackID: e.TrackID,
		EventID: e.ID, PersonID: id.PersonID, Name: id.Name, Score: id.Score, FAR: id.FAR, Distance: id.Distance,
		BBox: e.BBox, Time: e.Time}, id.Name)
}
