// Package camera owns capture: sources (video files, V4L2 devices, RTSP,
// GStreamer pipelines), latest-frame-wins capture loops, tracking and best
// shots. It may call estimators but knows nothing of HTTP or MQTT.
package camera
