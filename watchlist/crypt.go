package watchlist

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
)

// sealer encrypts templates with AES-256-GCM: a fresh random nonce per
// row, stored before the ciphertext, and the row's face id as additional
// data, so a sealed template copied onto another row does not open.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("encryption key is %d bytes, want 32 (AES-256)", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain []byte, rowID string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(rowID)), nil
}

func (s *sealer) open(sealed []byte, rowID string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("sealed template is too short")
	}
	p, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(rowID))
	if err != nil {
		return nil, errors.New("template does not decrypt with this key")
	}
	return p, nil
}

// LoadKey reads a key file: 32 raw bytes, or 64 hexadecimal digits (with
// optional surrounding white space). It must not be readable by others.
func LoadKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("watchlist.encryption_key_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("watchlist.encryption_key_file %s: mode %04o lets others read it; chmod 600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("watchlist.encryption_key_file: %w", err)
	}
	if len(b) == 32 {
		return b, nil
	}
	if k, err := hex.DecodeString(string(bytes.TrimSpace(b))); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, fmt.Errorf("watchlist.encryption_key_file %s: want 32 bytes or 64 hex digits, found %d bytes", path, len(b))
}
