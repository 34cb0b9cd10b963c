package camera

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"gocv.io/x/gocv"
)

// SourceKind says which capture backend a source uses.
type SourceKind string

const (
	SourceFile      SourceKind = "file"      // a video file, decoded by FFmpeg
	SourceV4L2      SourceKind = "v4l2"      // a V4L2 device, by path or index
	SourceStream    SourceKind = "stream"    // rtsp://, rtsps://, http(s):// streams through FFmpeg
	SourceGStreamer SourceKind = "gstreamer" // a raw GStreamer pipeline ending in appsink
)

// Source is a parsed camera URL.
//
// Accepted forms:
//   - /dev/video0, 0, v4l2:///dev/video0, v4l2://0: a V4L2 device
//   - /path/clip.avi, file:///path/clip.avi?loop=true&live=false: a video file
//   - rtsp://host/stream (also rtsps, http, https): a network stream
//   - gst:nvarguscamerasrc ! ... ! appsink: a GStreamer pipeline (Jetson CSI cameras)
type Source struct {
	Kind   SourceKind
	Target string // file path, device path, stream URL or pipeline
	Device int    // V4L2 device index when Target is empty
	// Loop replays a file from the start when it ends; otherwise a file
	// that ends stops its camera.
	Loop bool
	// Live paces a file at its frame rate and lets newer frames replace
	// frames analysis has not taken, like a camera. Not live, a file is read
	// as fast as analysis takes frames and no frame is dropped.
	Live bool
}

// ParseSource parses a camera URL; loop is the config's loop option, which a
// file URL's ?loop= overrides. Files play live unless ?live=false.
func ParseSource(raw string, loop bool) (Source, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Source{}, errors.New("empty camera url")
	}
	if rest, ok := strings.CutPrefix(raw, "gst:"); ok {
		if strings.TrimSpace(rest) == "" {
			return Source{}, errors.New("empty gstreamer pipeline")
		}
		return Source{Kind: SourceGStreamer, Target: strings.TrimSpace(rest), Live: true}, nil
	}
	if n, err := strconv.Atoi(raw); err == nil {
		if n < 0 {
			return Source{}, fmt.Errorf("negative v4l2 device index %d", n)
		}
		return Source{Kind: SourceV4L2, Device: n, Live: true}, nil
	}
	if strings.HasPrefix(raw, "/dev/") {
		return Source{Kind: SourceV4L2, Target: raw, Live: true}, nil
	}
	if !strings.Contains(raw, "://") {
		return Source{Kind: SourceFile, Target: raw, Loop: loop, Live: true}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Source{}, fmt.Errorf("parse camera url: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "rtsp", "rtsps", "http", "https":
		return Source{Kind: SourceStream, Target: raw, Live: true}, nil
	case "v4l2":
		dev := u.Host + u.Path
		if n, err := strconv.Atoi(dev); err == nil && n >= 0 {
			return Source{Kind: SourceV4L2, Device: n, Live: true}, nil
		}
		if !strings.HasPrefix(dev, "/dev/") {
			return Source{}, fmt.Errorf("v4l2 url %q names neither an index nor a /dev path", RedactURL(raw))
		}
		return Source{Kind: SourceV4L2, Target: dev, Live: true}, nil
	case "file":
		if u.Path == "" {
			return Source{}, fmt.Errorf("file url %q has no path", raw)
		}
		s := Source{Kind: SourceFile, Target: u.Path, Loop: loop, Live: true}
		q := u.Query()
		if v := q.Get("loop"); v != "" {
			if s.Loop, err = strconv.ParseBool(v); err != nil {
				return Source{}, fmt.Errorf("file url loop=%q: %w", v, err)
			}
		}
		if v := q.Get("live"); v != "" {
			if s.Live, err = strconv.ParseBool(v); err != nil {
				return Source{}, fmt.Errorf("file url live=%q: %w", v, err)
			}
		}
		return s, nil
	default:
		return Source{}, fmt.Errorf("camera url scheme %q is not supported (file, v4l2, rtsp, rtsps, http, https, gst:)", u.Scheme)
	}
}

// String names the source without credentials.
func (s Source) String() string {
	switch s.Kind {
	case SourceV4L2:
		if s.Target == "" {
			return fmt.Sprintf("v4l2:%d", s.Device)
		}
		return "v4l2:" + s.Target
	case SourceStream:
		return RedactURL(s.Target)
	case SourceGStreamer:
		return "gst:" + s.Target
	default:
		return "file:" + s.Target
	}
}

// RedactURL hides the password of a URL's user info, for logs and states.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// open opens the capture. The caller owns the returned capture.
func (s Source) open() (*gocv.VideoCapture, error) {
	var (
		vc  *gocv.VideoCapture
		err error
	)
	switch s.Kind {
	case SourceFile:
		// FFmpeg opens what exists; checking first gives a clear error instead
		// of OpenCV trying every backend on a missing path.
		if _, serr := os.Stat(s.Target); serr != nil {
			return nil, fmt.Errorf("open %s: %w", s, serr)
		}
		vc, err = gocv.VideoCaptureFileWithAPI(s.Target, gocv.VideoCaptureFFmpeg)
	case SourceV4L2:
		if s.Target == "" {
			vc, err = gocv.VideoCaptureDeviceWithAPI(s.Device, gocv.VideoCaptureV4L2)
		} else {
			vc, err = gocv.VideoCaptureFileWithAPI(s.Target, gocv.VideoCaptureV4L2)
		}
	case SourceStream:
		vc, err = gocv.VideoCaptureFileWithAPI(s.Target, gocv.VideoCaptureFFmpeg)
	case SourceGStreamer:
		vc, err = gocv.VideoCaptureFileWithAPI(s.Target, gocv.VideoCaptureGstreamer)
	default:
		return nil, fmt.Errorf("open %s: unknown source kind %q", s, s.Kind)
	}
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		// gocv's message repeats the raw URL, credentials included: say it ourselves.
		return nil, fmt.Errorf("open %s: the %s backend cannot open it", s, backendName(s.Kind))
	}
	return vc, nil
}

func backendName(k SourceKind) string {
	switch k {
	case SourceV4L2:
		return "V4L2"
	case SourceGStreamer:
		return "GStreamer"
	default:
		return "FFmpeg"
	}
}
