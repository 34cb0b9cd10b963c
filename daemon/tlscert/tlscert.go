// Package tlscert owns the HTTP server's certificate: it loads the key pair
// and hands it to each TLS handshake, so that a renewed certificate is picked
// up on SIGHUP without a restart or a dropped connection.
package tlscert

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// Reloader serves the current key pair of certFile and keyFile.
type Reloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// Load reads the key pair once; it fails when either file is unreadable or
// they do not match.
func Load(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload re-reads the files; on error the previous pair stays in use.
func (r *Reloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("http.cert_file %s / http.key_file %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert.Store(&c)
	return nil
}

// Config is a server TLS configuration (TLS 1.2 and later) that asks the
// reloader for the certificate at every handshake.
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
	}
}
