package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"imageapid/internal/testenv"
)

type certFiles struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// makeCerts writes a throwaway CA, a server certificate for 127.0.0.1 and a
// client certificate, as PEM files in dir.
func makeCerts(t *testing.T, dir string) certFiles {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "PRIVATE KEY", der)
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	serverDER, serverKey := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	clientDER, clientKey := leaf(3, "imageapid", x509.ExtKeyUsageClientAuth)
	return certFiles{
		ca:         write("ca.pem", "CERTIFICATE", caDER),
		serverCert: write("server.pem", "CERTIFICATE", serverDER),
		serverKey:  writeKey("server.key", serverKey),
		clientCert: write("client.pem", "CERTIFICATE", clientDER),
		clientKey:  writeKey("client.key", clientKey),
	}
}

// TestTLSClientCertAndPassword talks to a mosquitto that wants TLS, a client
// certificate and a password.
func TestTLSClientCertAndPassword(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs := makeCerts(t, dir)
	passwd := filepath.Join(dir, "passwd")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "mosquitto_passwd", "-c", "-b", passwd, "box", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	// mosquitto started as root drops to its own user, which must read these.
	for _, f := range []string{passwd, certs.ca, certs.serverCert, certs.serverKey} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := testenv.FreePort(t)
	mq := startMosquittoConf(t, port, fmt.Sprintf(
		"allow_anonymous false\npassword_file %s\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
		passwd, certs.ca, certs.serverCert, certs.serverKey))
	_ = mq
	url := fmt.Sprintf("ssl://127.0.0.1:%d", port)

	withTLS := func(user, pass string) func(*Options) {
		return func(o *Options) {
			o.CAFile, o.CertFile, o.KeyFile = certs.ca, certs.clientCert, certs.clientKey
			o.Username, o.Password = user, pass
		}
	}
	bad := newTestPublisher(t, url, t.TempDir(), withTLS("box", "wrong"))
	good := newTestPublisher(t, url, t.TempDir(), withTLS("box", "s3cret"))
	publishEvents(t, good, 0, 3)
	testenv.WaitFor(t, 10*time.Second, "delivery over TLS", func() bool { return good.Stats().Delivered == 3 })
	if err := bad.PublishEvent(trackEvent{Type: "track_new"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if st := bad.Stats(); st.Connected || st.Delivered != 0 {
		t.Errorf("wrong password: %+v", st)
	}

	if _, err := New(context.Background(), Options{URL: url, OutboxDir: t.TempDir(), CertFile: certs.clientCert}); err == nil {
		t.Error("client certificate without a key accepted")
	}
	if _, err := New(context.Background(), Options{URL: "tcp://127.0.0.1:1", OutboxDir: t.TempDir(), CAFile: certs.ca}); err == nil {
		t.Error("CA file with a plain tcp:// URL accepted")
	}
}
