package ui

import (
	"fmt"
	"image"
	"image/color"
	"net/http"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"imageapid/camera"
)

// FrameSource hands out a camera's analysed frames (the daemon's cameras).
type FrameSource interface {
	Subscribe(cameraID string, maxFPS float64) (*camera.Subscription, error)
}

// StreamOptions bound the camera previews.
type StreamOptions struct {
	// MaxFPS caps a preview's frame rate; MaxWidth its width in pixels.
	MaxFPS   float64
	MaxWidth int
	// MaxClients caps the previews open on one camera at once.
	MaxClients int
	// Wait is how long a snapshot waits for a frame.
	Wait time.Duration
	// Names, when set, gives the person a track was identified as, written
	// beside its box.
	Names *TrackNames
}

// DefaultStreamOptions: 5 frames/s, 640 pixels wide, 3 previews a camera.
func DefaultStreamOptions() StreamOptions {
	return StreamOptions{MaxFPS: 5, MaxWidth: 640, MaxClients: 3, Wait: 5 * time.Second}
}

// StreamPrefix is where the camera previews live.
const StreamPrefix = "/v1/cameras/"

// StreamHandler serves, from the frames the camera pipeline analyses:
//
//	GET /v1/cameras/{id}/stream        MJPEG (multipart/x-mixed-replace), ?overlay=0 without boxes
//	GET /v1/cameras/{id}/snapshot.jpg  the next analysed frame, ?overlay=1 with boxes
//
// A preview costs nothing while nobody watches (the camera copies frames
// only for subscribers) and never writes a frame to disk.
func StreamHandler(src FrameSource, opts StreamOptions) http.Handler {
	return &streams{src: src, opts: opts, open: map[string]int{}}
}

type streams struct {
	src  FrameSource
	opts StreamOptions
	mu   sync.Mutex
	open map[string]int
}

func (s *streams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, StreamPrefix), "/"), "/")
	if len(parts) != 2 || parts[0] == "" || (parts[1] != "stream" && parts[1] != "snapshot.jpg") {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	id := parts[0]
	if parts[1] == "snapshot.jpg" {
		s.snapshot(w, r, id, r.URL.Query().Get("overlay") == "1")
		return
	}
	s.stream(w, r, id, r.URL.Query().Get("overlay") != "0")
}

func (s *streams) snapshot(w http.ResponseWriter, r *http.Request, id string, overlay bool) {
	sub, err := s.src.Subscribe(id, 0)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	defer sub.Close()
	t := time.NewTimer(s.opts.Wait)
	defer t.Stop()
	select {
	case f, ok := <-sub.Frames():
		if !ok {
			writeError(w, http.StatusServiceUnavailable, "the camera stopped")
			return
		}
		defer f.Mat.Close()
		b, err := s.encode(f, overlay)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "could not encode the frame")
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	case <-t.C:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("no frame from camera %s within %v", id, s.opts.Wait))
	case <-r.Context().Done():
	}
}

func (s *streams) stream(w http.ResponseWriter, r *http.Request, id string, overlay bool) {
	s.mu.Lock()
	if s.open[id] >= s.opts.MaxClients {
		s.mu.Unlock()
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("camera %s has %d previews open (the limit)", id, s.opts.MaxClients))
		return
	}
	s.open[id]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open[id]--
		s.mu.Unlock()
	}()
	sub, err := s.src.Subscribe(id, s.opts.MaxFPS)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	defer sub.Close()
	const boundary = "imageapidframe"
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case f, ok := <-sub.Frames():
			if !ok {
				return
			}
			b, err := s.encode(f, overlay)
			f.Mat.Close()
			if err != nil {
				return
			}
			rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // a reader that stopped is cut off
			if _, err := fmt.Fprintf(w, "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", boundary, len(b)); err != nil {
				return
			}
			if _, err := w.Write(append(b, '\r', '\n')); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// overlayColours are the box colours by detection class.
var overlayColours = map[string]color.RGBA{
	camera.ClassFace: {R: 80, G: 220, B: 80, A: 255},
	camera.ClassBody: {R: 240, G: 170, B: 40, A: 255},
}

// encode scales the frame to the preview width, draws the detections when
// asked, and encodes it as JPEG.
func (s *streams) encode(f camera.Frame, overlay bool) ([]byte, error) {
	img := f.Mat
	if s.opts.MaxWidth > 0 && img.Cols() > s.opts.MaxWidth {
		small := gocv.NewMat()
		defer small.Close()
		h := img.Rows() * s.opts.MaxWidth / img.Cols()
		gocv.Resize(img, &small, image.Pt(s.opts.MaxWidth, h), 0, 0, gocv.InterpolationArea)
		img = small
	}
	if overlay && len(f.Detections) > 0 { // img is this subscriber's own copy
		w, h := img.Cols(), img.Rows()
		for i, d := range f.Detections {
			col, ok := overlayColours[d.Class]
			if !ok {
				col = color.RGBA{R: 200, G: 200, B: 200, A: 255}
			}
			box := d.Box.Pixels(w, h)
			gocv.Rectangle(&img, box, col, 2)
			if i < len(f.TrackIDs) && f.TrackIDs[i] != "" {
				label := ShortTrackID(f.TrackIDs[i])
				if name := s.opts.Names.Name(f.TrackIDs[i]); name != "" {
					label += " " + name
				}
				at := image.Pt(box.Min.X+2, max(box.Min.Y-5, 12))
				gocv.PutText(&img, label, at, gocv.FontHersheySimplex, 0.45, color.RGBA{A: 255}, 3)
				gocv.PutText(&img, label, at, gocv.FontHersheySimplex, 0.45, col, 1)
			}
		}
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, 80})
	if err != nil {
		return nil, err
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

// ShortTrackID is the label a preview draws for a track and the console
// shows beside its events: the six hex digits of the track id's timestamp
// just before its per-process salt (camera ids are 16 hex digits of
// nanoseconds then 8 of salt), which tell apart the tracks on screen.
func ShortTrackID(id string) string {
	if len(id) == 24 {
		return id[10:16]
	}
	if len(id) > 6 {
		return id[len(id)-6:]
	}
	return id
}
