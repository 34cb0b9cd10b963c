package watchlist

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
	"imageapid/internal/detail"
)

// Prefix is where the watchlist routes live.
const Prefix = "/v1/watchlists"

// RouteLimits bound what one request may send and how long it may take.
type RouteLimits struct {
	MaxBodyBytes   int64 // an image or JSON request body
	MaxImportBytes int64 // an import file
	MaxPixels      int
	RequestTimeout time.Duration
	// ImageWorkers is how many requests run the face pipeline at once; the
	// others wait for a slot until their timeout.
	ImageWorkers int
}

// Handler serves:
//
//	GET    /v1/watchlists                                     lists, sizes and thresholds
//	PATCH  /v1/watchlists/{list}                              {"fa_r"}: the match threshold's target
//	POST   /v1/watchlists/{list}/persons                      {"name", "metadata"?} -> 201 {"id"}
//	GET    /v1/watchlists/{list}/persons?after=&limit=         a page of persons
//	GET    /v1/watchlists/{list}/persons/{id}                 a person and their faces
//	PATCH  /v1/watchlists/{list}/persons/{id}                 {"name"?, "metadata"?}
//	DELETE /v1/watchlists/{list}/persons/{id}                 erase the person and their templates
//	POST   /v1/watchlists/{list}/persons/{id}/faces           multipart image, {"$image"} or {"$template"} -> 201 {"face_id", "quality"}
//	DELETE /v1/watchlists/{list}/persons/{id}/faces/{face_id} erase one template
//	POST   /v1/watchlists/{list}/search                       {"$image"} or {"$template"}, "limit"
//	GET    /v1/watchlists/{list}/export                       the list as a versioned file
//	POST   /v1/watchlists/{list}/import                       such a file
func (s *Service) Handler(lim RouteLimits) http.Handler {
	if lim.ImageWorkers <= 0 {
		lim.ImageWorkers = 1
	}
	if lim.MaxImportBytes <= 0 {
		lim.MaxImportBytes = 64 << 20
	}
	return &routes{s: s, lim: lim, slots: make(chan struct{}, lim.ImageWorkers)}
}

type routes struct {
	s     *Service
	lim   RouteLimits
	slots chan struct{}
}

var (
	errTooLarge = errors.New("Request body size is too large")
	errMethod   = errors.New("Method Not Allowed")
)

func (rt *routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), rt.lim.RequestTimeout)
	defer cancel()
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, Prefix), "/")
	var p []string
	if rest != "" {
		p = strings.Split(rest, "/")
	}
	m := r.Method
	switch {
	case len(p) == 0:
		if m != http.MethodGet {
			reply(w, 0, nil, errMethod)
			return
		}
		v, err := rt.s.Lists(ctx)
		reply(w, http.StatusOK, map[string]any{"watchlists": v}, err)
	case len(p) == 1:
		if m != http.MethodPatch {
			reply(w, 0, nil, errMethod)
			return
		}
		var body struct {
			FAR *float64 `json:"fa_r"`
		}
		if err := rt.readJSON(w, r, &body); err != nil {
			reply(w, 0, nil, err)
			return
		}
		if body.FAR == nil {
			reply(w, 0, nil, fmt.Errorf("%w: field fa_r is required", ErrBadInput))
			return
		}
		v, err := rt.s.SetFAR(ctx, p[0], *body.FAR)
		reply(w, http.StatusOK, v, err)
	case len(p) == 2 && p[1] == "persons":
		switch m {
		case http.MethodPost:
			rt.createPerson(ctx, w, r, p[0])
		case http.MethodGet:
			rt.listPersons(ctx, w, r, p[0])
		default:
			reply(w, 0, nil, errMethod)
		}
	case len(p) == 3 && p[1] == "persons":
		switch m {
		case http.MethodGet:
			v, err := rt.s.Person(ctx, p[0], p[2])
			reply(w, http.StatusOK, v, err)
		case http.MethodPatch:
			rt.updatePerson(ctx, w, r, p[0], p[2])
		case http.MethodDelete:
			err := rt.s.DeletePerson(ctx, p[0], p[2])
			reply(w, http.StatusOK, map[string]any{"id": p[2], "deleted": true}, err)
		default:
			reply(w, 0, nil, errMethod)
		}
	case len(p) == 4 && p[1] == "persons" && p[3] == "faces":
		if m != http.MethodPost {
			reply(w, 0, nil, errMethod)
			return
		}
		rt.addFace(ctx, w, r, p[0], p[2])
	case len(p) == 5 && p[1] == "persons" && p[3] == "faces":
		if m != http.MethodDelete {
			reply(w, 0, nil, errMethod)
			return
		}
		err := rt.s.DeleteFace(ctx, p[0], p[2], p[4])
		reply(w, http.StatusOK, map[string]any{"face_id": p[4], "deleted": true}, err)
	case len(p) == 2 && p[1] == "search":
		if m != http.MethodPost {
			reply(w, 0, nil, errMethod)
			return
		}
		rt.search(ctx, w, r, p[0])
	case len(p) == 2 && p[1] == "export":
		if m != http.MethodGet {
			reply(w, 0, nil, errMethod)
			return
		}
		e, err := rt.s.Export(ctx, p[0])
		if err == nil {
			w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "watchlist-"+p[0]+".json"))
			w.Header().Set("Cache-Control", "no-store")
		}
		reply(w, http.StatusOK, e, err)
	case len(p) == 2 && p[1] == "import":
		if m != http.MethodPost {
			reply(w, 0, nil, errMethod)
			return
		}
		var e Export
		if err := rt.readJSONLimit(w, r, &e, rt.lim.MaxImportBytes); err != nil {
			reply(w, 0, nil, err)
			return
		}
		v, err := rt.s.Import(ctx, p[0], e)
		reply(w, http.StatusCreated, v, err)
	default:
		reply(w, 0, nil, fmt.Errorf("%w: Not Found", ErrNotFound))
	}
}

func (rt *routes) createPerson(ctx context.Context, w http.ResponseWriter, r *http.Request, list string) {
	var body struct {
		Name     *string         `json:"name"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := rt.readJSON(w, r, &body); err != nil {
		reply(w, 0, nil, err)
		return
	}
	if body.Name == nil {
		reply(w, 0, nil, fmt.Errorf("%w: field name is required", ErrBadInput))
		return
	}
	p, err := rt.s.CreatePerson(ctx, list, *body.Name, nullAsAbsent(body.Metadata))
	reply(w, http.StatusCreated, p, err)
}

func nullAsAbsent(m json.RawMessage) json.RawMessage {
	if string(bytes.TrimSpace(m)) == "null" {
		return nil
	}
	return m
}

func (rt *routes) listPersons(ctx context.Context, w http.ResponseWriter, r *http.Request, list string) {
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			reply(w, 0, nil, fmt.Errorf("%w: limit must be a whole number from 1 to 500", ErrBadInput))
			return
		}
		limit = n
	}
	page, more, err := rt.s.Persons(ctx, list, q.Get("after"), limit)
	if page == nil {
		page = []Person{}
	}
	out := map[string]any{"persons": page}
	if more {
		out["next"] = page[len(page)-1].ID
	}
	reply(w, http.StatusOK, out, err)
}

func (rt *routes) updatePerson(ctx context.Context, w http.ResponseWriter, r *http.Request, list, id string) {
	var body struct {
		Name     *string         `json:"name"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := rt.readJSON(w, r, &body); err != nil {
		reply(w, 0, nil, err)
		return
	}
	if body.Name == nil && body.Metadata == nil {
		reply(w, 0, nil, fmt.Errorf("%w: give name and/or metadata", ErrBadInput))
		return
	}
	p, err := rt.s.UpdatePerson(ctx, list, id, body.Name, body.Metadata)
	reply(w, http.StatusOK, p, err)
}

// probe is what enrolment and search read: an image or a template.
type probe struct {
	image    []byte
	template []byte
	limit    int
}

func (rt *routes) addFace(ctx context.Context, w http.ResponseWriter, r *http.Request, list, id string) {
	pr, err := rt.readProbe(w, r)
	if err != nil {
		reply(w, 0, nil, err)
		return
	}
	if pr.template != nil {
		f, err := rt.s.AddTemplate(ctx, list, id, pr.template, nil)
		reply(w, http.StatusCreated, map[string]any{"face_id": f.ID, "quality": nil}, err)
		return
	}
	img, err := estimators.DecodeImage(pr.image, rt.lim.MaxPixels)
	if err != nil {
		reply(w, 0, nil, fmt.Errorf("%w: image: %v", ErrBadInput, err))
		return
	}
	defer img.Close()
	if err := rt.acquire(ctx); err != nil {
		reply(w, 0, nil, err)
		return
	}
	defer rt.release()
	f, q, err := rt.s.EnrolImage(ctx, list, id, img)
	reply(w, http.StatusCreated, map[string]any{"face_id": f.ID, "quality": q}, err)
}

func (rt *routes) search(ctx context.Context, w http.ResponseWriter, r *http.Request, list string) {
	pr, err := rt.readProbe(w, r)
	if err != nil {
		reply(w, 0, nil, err)
		return
	}
	if pr.template != nil {
		c, err := rt.s.SearchTemplate(ctx, list, pr.template, pr.limit)
		reply(w, http.StatusOK, map[string]any{"faces": []map[string]any{{"candidates": c}}}, err)
		return
	}
	img, err := estimators.DecodeImage(pr.image, rt.lim.MaxPixels)
	if err != nil {
		reply(w, 0, nil, fmt.Errorf("%w: image: %v", ErrBadInput, err))
		return
	}
	defer img.Close()
	if err := rt.acquire(ctx); err != nil {
		reply(w, 0, nil, err)
		return
	}
	defer rt.release()
	faces, err := rt.s.SearchImage(ctx, list, img, pr.limit)
	reply(w, http.StatusOK, map[string]any{"faces": faces}, err)
}

func (rt *routes) acquire(ctx context.Context) error {
	select {
	case rt.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (rt *routes) release() { <-rt.slots }

// readProbe reads a multipart part "image" (and an optional field
// "limit"), or JSON {"$image"} or {"$template"} with an optional "limit".
func (rt *routes) readProbe(w http.ResponseWriter, r *http.Request) (probe, error) {
	pr := probe{limit: 5}
	limit := rt.lim.MaxBodyBytes
	if r.ContentLength > limit {
		return pr, errTooLarge
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return pr, tooLargeOr(err, "malformed multipart body")
			}
			switch part.FormName() {
			case "image":
				if pr.image, err = io.ReadAll(part); err != nil {
					return pr, tooLargeOr(err, "could not read the image part")
				}
			case "limit":
				v, err := io.ReadAll(io.LimitReader(part, 16))
				if err != nil {
					return pr, tooLargeOr(err, "could not read limit")
				}
				if pr.limit, err = strconv.Atoi(strings.TrimSpace(string(v))); err != nil {
					pr.limit = -1
				}
			default:
				if _, err := io.Copy(io.Discard, part); err != nil {
					return pr, tooLargeOr(err, "malformed multipart body")
				}
			}
		}
		if pr.image == nil {
			return pr, fmt.Errorf("%w: the form has no part \"image\"", ErrBadInput)
		}
	} else {
		raw, err := io.ReadAll(body)
		if err != nil {
			return pr, tooLargeOr(err, "could not read the request body")
		}
		var f struct {
			Image    *string `json:"$image"`
			Template *string `json:"$template"`
			Limit    *int    `json:"limit"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			return pr, fmt.Errorf("%w: %s", ErrBadInput, detail.JSONProblem(err))
		}
		if (f.Image == nil) == (f.Template == nil) {
			return pr, fmt.Errorf("%w: send one of $image or $template (base64), or a multipart part \"image\"", ErrBadInput)
		}
		field, b64 := "$image", f.Image
		if f.Template != nil {
			field, b64 = "$template", f.Template
		}
		dec, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return pr, fmt.Errorf("%w: %s: %s", ErrBadInput, field, estimators.MsgBadBase64)
		}
		if f.Template != nil {
			pr.template = dec
		} else {
			pr.image = dec
		}
		if f.Limit != nil {
			pr.limit = *f.Limit
		}
	}
	if pr.limit < 1 || pr.limit > 100 {
		return pr, fmt.Errorf("%w: limit must be a whole number from 1 to 100", ErrBadInput)
	}
	return pr, nil
}

func tooLargeOr(err error, what string) error {
	var tl *http.MaxBytesError
	if errors.As(err, &tl) {
		return errTooLarge
	}
	return fmt.Errorf("%w: %s", ErrBadInput, what)
}

func (rt *routes) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return rt.readJSONLimit(w, r, v, rt.lim.MaxBodyBytes)
}

func (rt *routes) readJSONLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if r.ContentLength > limit {
		return errTooLarge
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return tooLargeOr(err, "could not read the request body")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s", ErrBadInput, detail.JSONProblem(err))
	}
	return nil
}

// reply writes v with status, or err as {"detail"} with the status it maps to.
func reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		code, msg := http.StatusInternalServerError, "Internal error in the watchlist"
		switch {
		case errors.Is(err, ErrNotFound):
			code, msg = http.StatusNotFound, strings.TrimPrefix(err.Error(), ErrNotFound.Error()+": ")
		case errors.Is(err, ErrConflict):
			code, msg = http.StatusConflict, strings.TrimPrefix(err.Error(), ErrConflict.Error()+": ")
		case errors.Is(err, ErrBadInput):
			code, msg = http.StatusBadRequest, strings.TrimPrefix(err.Error(), ErrBadInput.Error()+": ")
		case errors.Is(err, errTooLarge):
			code, msg = http.StatusRequestEntityTooLarge, err.Error()
		case errors.Is(err, errMethod):
			code, msg = http.StatusMethodNotAllowed, err.Error()
		case errors.Is(err, context.DeadlineExceeded):
			code, msg = http.StatusServiceUnavailable, "The request could not be served in time"
		}
		if msg2, ok := estimators.IsInputError(err); ok && code == http.StatusInternalServerError {
			code, msg = http.StatusBadRequest, msg2
		}
		detail.Write(w, code, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
