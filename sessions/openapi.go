package sessions

// OpenAPIPaths describes the session routes for the daemon's /openapi.json.
func OpenAPIPaths() map[string]any {
	errs := func(codes ...string) map[string]any {
		out := map[string]any{}
		for _, c := range codes {
			out[c] = map[string]any{"description": "{\"detail\": ...}"}
		}
		return out
	}
	with := func(m map[string]any, ok string, desc string) map[string]any {
		m[ok] = map[string]any{"description": desc}
		return m
	}
	id := []any{map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}}
	json := func(props map[string]any) map[string]any {
		return map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object", "properties": props}}}}
	}
	codes := map[string]any{"type": "string", "enum": challengeCodes}
	return map[string]any{
		Prefix: map[string]any{"post": map[string]any{
			"summary": "Open a kiosk liveness session",
			"requestBody": json(map[string]any{
				"source":     map[string]any{"type": "string", "description": "frames (default) or camera:<id>"},
				"challenges": map[string]any{"type": "array", "items": codes, "description": "omitted: drawn at random"},
				"timeout_s":  map[string]any{"type": "number"},
				"reference":  map[string]any{"type": "object", "description": "{\"$template\": base64} or {\"$image\": base64}"},
				"best_shot":  map[string]any{"type": "boolean", "description": "keep a JPEG crop of the best frame's face for GET (in memory only)"},
			}),
			"responses": with(errs("400", "413", "429"), "201", "{id, status, source, challenges, expires_at}"),
		}},
		Prefix + "/{id}": map[string]any{
			"get":    map[string]any{"summary": "A session's state and, once finished, its result", "parameters": id, "responses": with(errs("404"), "200", "the session (with best_shot, base64 JPEG, when asked)")},
			"delete": map[string]any{"summary": "Cancel a session", "parameters": id, "responses": with(errs("404"), "200", "the session")},
		},
		Prefix + "/{id}/frames": map[string]any{"post": map[string]any{
			"summary":    "One frame (multipart part image with field t_ms, or JSON {$image, t_ms}); answers the current guidance",
			"parameters": id,
			"requestBody": map[string]any{"content": map[string]any{
				"multipart/form-data": map[string]any{"schema": map[string]any{"type": "object", "properties": map[string]any{
					"image": map[string]any{"type": "string", "format": "binary"}, "t_ms": map[string]any{"type": "number"}}}},
				"application/json": map[string]any{"schema": map[string]any{"type": "object", "properties": map[string]any{
					"$image": map[string]any{"type": "string", "format": "byte"}, "t_ms": map[string]any{"type": "number"}}}},
			}},
			"responses": with(errs("400", "404", "409", "413"), "200", "{status, step, steps, instruction {code, text}, progress, face {bbox, quality}, result?}"),
		}},
		Prefix + "/{id}/events": map[string]any{"get": map[string]any{
			"summary": "The guidance as server-sent events until the session finishes", "parameters": id,
			"responses": with(errs("404", "429"), "200", "text/event-stream"),
		}},
	}
}
