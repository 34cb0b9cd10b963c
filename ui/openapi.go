package ui

// OpenAPIPaths describes the page and the camera previews for the daemon's /openapi.json.
func OpenAPIPaths() map[string]any {
	id := []any{map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}}
	overlay := map[string]any{"name": "overlay", "in": "query", "schema": map[string]any{"type": "string", "enum": []string{"0", "1"}}}
	resp := func(ok string, errs ...string) map[string]any {
		out := map[string]any{"200": map[string]any{"description": ok}}
		for _, c := range errs {
			out[c] = map[string]any{"description": "{\"detail\": ...}"}
		}
		return out
	}
	return map[string]any{
		"/kiosk": map[string]any{"get": map[string]any{"summary": "The kiosk liveness page", "responses": resp("text/html")}},
		"/v1/cameras/{id}/stream": map[string]any{"get": map[string]any{
			"summary":    "A camera's analysed frames as MJPEG (capped rate and width; overlay=0 without boxes)",
			"parameters": append(append([]any{}, id...), overlay),
			"responses":  resp("multipart/x-mixed-replace of image/jpeg", "404", "429"),
		}},
		"/v1/cameras/{id}/snapshot.jpg": map[string]any{"get": map[string]any{
			"summary":    "A camera's next analysed frame (overlay=1 with boxes)",
			"parameters": append(append([]any{}, id...), overlay),
			"responses":  resp("image/jpeg", "404", "503"),
		}},
	}
}

// ConsoleOpenAPIPaths describes the console and the routes it reads.
func ConsoleOpenAPIPaths() map[string]any {
	get := func(summary, ok string, params []any, errs ...string) map[string]any {
		resp := map[string]any{"200": map[string]any{"description": ok}}
		for _, c := range errs {
			resp[c] = map[string]any{"description": "{\"detail\": ...}"}
		}
		op := map[string]any{"summary": summary, "responses": resp}
		if params != nil {
			op["parameters"] = params
		}
		return map[string]any{"get": op}
	}
	list := func(name, what string) map[string]any {
		return map[string]any{"name": name, "in": "query", "description": what, "schema": map[string]any{"type": "string"}}
	}
	return map[string]any{
		"/": get("The web console (cameras, events, system)", "text/html", nil),
		EventsPath: get("Live events as server-sent events: the MQTT events' JSON, the latest ones first",
			"text/event-stream", []any{list("camera", "comma-separated camera ids"), list("kind", "comma-separated event types (track_new, track_update, track_end)")},
			"400", "429"),
		InViewPath: get("Faces and people each camera had in view, in 5 s buckets over the last 10 minutes", "application/json", nil),
		SystemPath: get("Models and delegates, MQTT, request statistics, version, uptime and the effective config (secrets masked)", "application/json", nil, "500"),
	}
}

// WatchlistsOpenAPIPaths describes the watchlist page (served while watchlists are enabled).
func WatchlistsOpenAPIPaths() map[string]any {
	return map[string]any{WatchlistsPage: map[string]any{"get": map[string]any{
		"summary":   "The watchlist page: a list's persons, their faces and quality; add a person from a photo, delete persons",
		"responses": map[string]any{"200": map[string]any{"description": "text/html"}, "404": map[string]any{"description": "{\"detail\": ...} (watchlists disabled)"}},
	}}}
}
