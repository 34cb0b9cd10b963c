// Package camera owns capture: sources (video files, V4L2 devices, RTSP,
// GStreamer pipelines), latest-frame-wins capture loops, tracking and best
// shots. It may call estimators but knows nothing of HTTP or MQTT.
//
// A Manager runs one Camera per Config and changes the set at run time
// (Apply for a reload: unchanged cameras keep running). Each Camera has
//
//   - a capture goroutine that opens its Source, reads frames and reopens a
//     failed or ended source with doubling backoff (Config.Reconnect); a file
//     played live is paced at its own frame rate, like a camera;
//   - a one-frame slot between capture and analysis: a frame analysis has
//     not taken yet is replaced by the newer one and counted as dropped, so
//     nothing queues (a file with ?live=false is read losslessly instead);
//   - an analysis goroutine that runs the Detectors, a per-class ByteTrack-style
//     Tracker (Kalman motion, two-stage association on buffered IoU, and for
//     face tracks the best shot's template as an appearance cue when the
//     Attributor makes one), follows confirmed tracks
//     through the camera's zones and lines, keeps each track's best shot (by a
//     QualityFunc) and runs the Attributor on it only when due
//     (AttributeConfig), and turns tracks into events;
//   - a publisher goroutine that hands events, in order, to the EventSink
//     with a timeout per event, from a bounded queue.
//
// Frames are gocv Mats (native memory): each has one owner at a time (the
// capture loop, the slot, or analysis while it runs the detectors), and
// detectors and attributors only borrow them for the call.
//
// Events are track_new (a track reached Tracker.MinHits), track_update (at
// most once per EventConfig.UpdateInterval per track), track_end (unseen
// past Tracker.TTL, or the camera stopped), and zone_enter, zone_exit and
// line_cross (once per track and zone or line). Attributes named in
// EventConfig.PrivateKeys (templates) and best-shot images are left out of
// events unless enabled.
//
// State (for GET /cameras and retained MQTT state) reaches Options.OnState on
// every change and every StateInterval; Stats are plain counters for metrics;
// LastProgress tells a watchdog whether the loops still turn (a capture
// blocked in a network read may lag by FFmpeg's 30 s read timeout).
//
// HOGPeople, OpenCV's classic HOG pedestrian detector, is the body detector
// of last resort and the one the tests use: it needs no model files.
package camera
