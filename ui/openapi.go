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
