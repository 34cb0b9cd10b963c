package sessions

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"imageapid/estimators"
	"imageapid/estimators/facetemplate"
	"imageapid/internal/detail"
)

// Prefix is where the session routes live.
const Prefix = "/v1/liveness/sessions"

// Handler serves the session routes:
//
//	POST   /v1/liveness/sessions              create
//	GET    /v1/liveness/sessions/{id}         state and result
//	POST   /v1/liveness/sessions/{id}/frames  one frame -> guidance
//	GET    /v1/liveness/sessions/{id}/events  guidance as server-sent events
//	DELETE /v1/liveness/sessions/{id}         cancel
func (m *Manager) Handler(requestTimeout time.Duration) http.Handler {
	return &routes{m: m, timeout: requestTimeout}
}

type routes struct {
	m       *Manager
	timeout time.Duration
}

func (rt *routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, Prefix), "/")
	parts := strings.Split(rest, "/")
	if rest == "" {
		parts = nil
	}
	switch {
	case len(parts) == 0 && r.Method == http.MethodPost:
		rt.create(w, r)
	case len(parts) == 1 && r.Method == http.MethodGet:
		v, err := rt.m.Get(parts[0])
		reply(w, http.StatusOK, v, err)
	case len(parts) == 1 && r.Method == http.MethodDelete:
		v, err := rt.m.Cancel(r.Context(), parts[0])
		reply(w, http.StatusOK, v, err)
	case len(parts) == 2 && parts[1] == "frames" && r.Method == http.MethodPost:
		rt.frame(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "events" && r.Method == http.MethodGet:
		rt.events(w, r, parts[0])
	case len(parts) <= 2 && (len(parts) < 2 || parts[1] == "frames" || parts[1] == "events"):
		detail.Write(w, http.StatusMethodNotAllowed, "Method Not Allowed")
	default:
		detail.Write(w, http.StatusNotFound, "Not Found")
	}
}

// createBody is the JSON of a new session.
type createBody struct {
	Source     string           `json:"source"`
	Challenges *[]string        `json:"challenges"`
	TimeoutS   *float64         `json:"timeout_s"`
	Reference  *json.RawMessage `json:"reference"`
	// BestShot asks to keep a crop of the best frame's face for GET.
	BestShot bool `json:"best_shot"`
}

func (rt *routes) create(w http.ResponseWriter, r *http.Request) {
	var body createBody
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rt.m.cfg.MaxFrameBytes*2))
	if err != nil {
		reply(w, 0, nil, tooLargeOr(err, "could not read the request body"))
		return
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			detail.Write(w, http.StatusBadRequest, "Invalid session request: "+detail.JSONProblem(err))
			return
		}
	}
	req := Request{Source: body.Source, BestShot: body.BestShot}
	if body.Challenges != nil {
		req.Challenges, req.ChallengesSet = *body.Challenges, true
	}
	if body.TimeoutS != nil {
		if *body.TimeoutS <= 0 {
			detail.Write(w, http.StatusBadRequest, "timeout_s must be positive")
			return
		}
		req.Timeout = time.Duration(*body.TimeoutS * float64(time.Second))
	}
	if body.Reference != nil {
		ctx, cancel := context.WithTimeout(r.Context(), rt.timeout)
		defer cancel()
		if req.Reference, err = rt.reference(ctx, *body.Reference); err != nil {
			reply(w, 0, nil, err)
			return
		}
	}
	c, err := rt.m.Create(req)
	if err == nil && rt.m.issueToken != nil {
		// The token outlives the session by a while, so the result can be read.
		c.Token = rt.m.issueToken(c.ID, c.ExpiresAt.Add(15*time.Minute))
	}
	reply(w, http.StatusCreated, c, err)
}

// reference reads {"$template": base64} or {"$image": base64} into a unit vector.
func (rt *routes) reference(ctx context.Context, raw json.RawMessage) ([]float32, error) {
	var ref struct {
		Template *string `json:"$template"`
		Image    *string `json:"$image"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil || (ref.Template == nil) == (ref.Image == nil) {
		return nil, fmt.Errorf("%w: reference must be {\"$template\": base64} or {\"$image\": base64}", ErrBadInput)
	}
	if ref.Template != nil {
		b, err := base64.StdEncoding.DecodeString(*ref.Template)
		if err != nil {
			return nil, fmt.Errorf("%w: reference $template: %s", ErrBadInput, estimators.MsgBadBase64)
		}
		tpl, err := facetemplate.Decode(b, rt.m.analyzer.ModelID())
		if err != nil {
			return nil, fmt.Errorf("%w: reference $template: %v", ErrBadInput, err)
		}
		return unit(tpl.Vector), nil
	}
	b, err := base64.StdEncoding.DecodeString(*ref.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: reference $image: %s", ErrBadInput, estimators.MsgBadBase64)
	}
	img, err := estimators.DecodeImage(b, rt.m.cfg.MaxFramePixels)
	if err != nil {
		return nil, fmt.Errorf("%w: reference $image: %v", ErrBadInput, err)
	}
	defer img.Close()
	vec, err := rt.m.analyzer.Embed(ctx, img)
	if err != nil {
		if msg, ok := estimators.IsInputError(err); ok {
			return nil, fmt.Errorf("%w: reference $image: %s", ErrBadInput, msg)
		}
		return nil, fmt.Errorf("reference $image: %w", err)
	}
	return vec, nil
}

func (rt *routes) frame(w http.ResponseWriter, r *http.Request, id string) {
	v, err := rt.m.Get(id)
	if err != nil {
		reply(w, 0, nil, err)
		return
	}
	if v.Source != "frames" {
		detail.Write(w, http.StatusConflict, fmt.Sprintf("session %s reads its frames from %s; it takes none over HTTP", id, v.Source))
		return
	}
	data, tMS, err := rt.readFrame(w, r)
	if err != nil {
		reply(w, 0, nil, err)
		return
	}
	img, err := estimators.DecodeImage(data, rt.m.cfg.MaxFramePixels)
	if err != nil {
		reply(w, 0, nil, fmt.Errorf("%w: %v", ErrBadInput, err))
		return
	}
	defer img.Close()
	ctx, cancel := context.WithTimeout(r.Context(), rt.timeout)
	defer cancel()
	g, err := rt.m.Frame(ctx, id, img, tMS)
	reply(w, http.StatusOK, g, err)
}

var errFrameTooLarge = errors.New("frame too large")

// readFrame reads a multipart part "image" (with an optional field "t_ms")
// or JSON {"$image": base64, "t_ms"}; tMS is -1 when not given.
func (rt *routes) readFrame(w http.ResponseWriter, r *http.Request) ([]byte, int64, error) {
	limit := rt.m.cfg.MaxFrameBytes*4/3 + 4096 // base64 and form overhead
	if r.ContentLength > limit {
		return nil, 0, errFrameTooLarge
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	tMS := int64(-1)
	var data []byte
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, 0, tooLargeOr(err, "malformed multipart body")
			}
			switch p.FormName() {
			case "image":
				if data, err = io.ReadAll(p); err != nil {
					return nil, 0, tooLargeOr(err, "could not read the image part")
				}
			case "t_ms":
				v, err := io.ReadAll(io.LimitReader(p, 32))
				if err != nil {
					return nil, 0, tooLargeOr(err, "could not read t_ms")
				}
				if tMS, err = parseTMS(string(v)); err != nil {
					return nil, 0, err
				}
			default:
				if _, err := io.Copy(io.Discard, p); err != nil {
					return nil, 0, tooLargeOr(err, "malformed multipart body")
				}
			}
		}
		if data == nil {
			return nil, 0, fmt.Errorf("%w: the form has no part \"image\"", ErrBadInput)
		}
	} else {
		raw, err := io.ReadAll(body)
		if err != nil {
			return nil, 0, tooLargeOr(err, "could not read the request body")
		}
		var f struct {
			Image *string  `json:"$image"`
			TMS   *float64 `json:"t_ms"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, 0, fmt.Errorf("%w: invalid frame: %s", ErrBadInput, detail.JSONProblem(err))
		}
		if f.Image == nil {
			return nil, 0, fmt.Errorf("%w: field $image is required", ErrBadInput)
		}
		if data, err = base64.StdEncoding.DecodeString(*f.Image); err != nil {
			return nil, 0, fmt.Errorf("%w: %s", ErrBadInput, estimators.MsgBadBase64)
		}
		if f.TMS != nil {
			if tMS, err = parseTMS(strconv.FormatFloat(*f.TMS, 'f', -1, 64)); err != nil {
				return nil, 0, err
			}
		}
	}
	if int64(len(data)) > rt.m.cfg.MaxFrameBytes {
		return nil, 0, errFrameTooLarge
	}
	return data, tMS, nil
}

func parseTMS(s string) (int64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || v > 24*3600*1000 {
		return 0, fmt.Errorf("%w: t_ms must be a number of milliseconds from 0 to one day, got %q", ErrBadInput, s)
	}
	return int64(v), nil
}

// errBodyBusy is a body whose read timed out or found the server's body
// budget full: the server was busy, not the client wrong.
var errBodyBusy = errors.New("body busy")

func tooLargeOr(err error, what string) error {
	var (
		tl      *http.MaxBytesError
		timeout interface{ Timeout() bool }
	)
	switch {
	case errors.As(err, &tl):
		return errFrameTooLarge
	case errors.As(err, &timeout) && timeout.Timeout():
		return errBodyBusy
	}
	return fmt.Errorf("%w: %s", ErrBadInput, what)
}

func (rt *routes) events(w http.ResponseWriter, r *http.Request, id string) {
	ch, cancel, err := rt.m.Subscribe(id)
	if err != nil {
		reply(w, 0, nil, err)
		return
	}
	defer cancel()
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			io.WriteString(w, ": keep-alive\n\n")
		case g, ok := <-ch:
			if !ok {
				return
			}
			b, _ := json.Marshal(g)
			fmt.Fprintf(w, "event: guidance\ndata: %s\n\n", b)
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// reply writes v with status, or err as {"detail"} with the status it maps to.
func reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		code := http.StatusInternalServerError
		msg := "Internal error while processing the session"
		switch {
		case errors.Is(err, ErrNotFound):
			code, msg = http.StatusNotFound, err.Error()
		case errors.Is(err, ErrTooMany):
			code, msg = http.StatusTooManyRequests, err.Error()
		case errors.Is(err, ErrFinished):
			code, msg = http.StatusConflict, err.Error()
		case errors.Is(err, ErrBadInput):
			code, msg = http.StatusBadRequest, strings.TrimPrefix(err.Error(), ErrBadInput.Error()+": ")
		case errors.Is(err, errFrameTooLarge):
			code, msg = http.StatusRequestEntityTooLarge, "Request body size is too large"
		case errors.Is(err, errBodyBusy):
			w.Header().Set("Retry-After", "2")
			code, msg = http.StatusServiceUnavailable, "Server busy: the request body could not be read in time, try again shortly"
		case errors.Is(err, context.DeadlineExceeded):
			code, msg = http.StatusServiceUnavailable, "The frame could not be analysed in time"
		}
		detail.Write(w, code, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
