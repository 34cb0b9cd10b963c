package estimators

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Object is one JSON object of a sample. It keeps every key it was given, in
// order, so foreign keys from other services survive a round trip; new keys
// are appended.
type Object struct {
	keys []string
	vals map[string]json.RawMessage
}

// NewObject returns an empty object.
func NewObject() *Object { return &Object{vals: map[string]json.RawMessage{}} }

// Len is the number of keys.
func (o *Object) Len() int { return len(o.keys) }

// Has reports whether key is present.
func (o *Object) Has(key string) bool { _, ok := o.vals[key]; return ok }

// Raw returns the JSON of key.
func (o *Object) Raw(key string) (json.RawMessage, bool) { v, ok := o.vals[key]; return v, ok }

// Get decodes key into v; it reports false when the key is absent.
func (o *Object) Get(key string, v any) (bool, error) {
	raw, ok := o.vals[key]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("field %q: %w", key, err)
	}
	return true, nil
}

// String returns key as a string, or "" if absent or not a string.
func (o *Object) String(key string) string {
	var s string
	if ok, err := o.Get(key, &s); !ok || err != nil {
		return ""
	}
	return s
}

// Set encodes v under key, replacing the value in place or appending the key.
func (o *Object) Set(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	o.SetRaw(key, b)
	return nil
}

// SetRaw stores JSON under key.
func (o *Object) SetRaw(key string, raw json.RawMessage) {
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = raw
}

// Delete removes key.
func (o *Object) Delete(key string) {
	if _, ok := o.vals[key]; !ok {
		return
	}
	delete(o.vals, key)
	for i, k := range o.keys {
		if k == key {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
}

// Keys returns the keys in order.
func (o *Object) Keys() []string { return append([]string(nil), o.keys...) }

// MarshalJSON writes the keys in order.
func (o *Object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(o.vals[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads a JSON object keeping its key order. A key given twice
// keeps its last value, as most JSON readers do.
func (o *Object) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("not a JSON object")
	}
	*o = Object{vals: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		o.SetRaw(key, raw)
	}
	_, err = dec.Token()
	return err
}
