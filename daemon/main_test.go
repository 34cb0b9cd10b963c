package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"imageapid/daemon/config"
	"imageapid/internal/testenv"
)

// testConfig is the default config with paths into this checkout.
func testConfig(t testing.TB) config.Config {
	root := testenv.Root(t)
	cfg := config.Default()
	cfg.Models.Manifest = filepath.Join(root, "models", "manifest.json")
	cfg.Models.Dir = filepath.Join(root, "models", "build")
	cfg.MQTT.EmbeddedListen = "127.0.0.1:0"
	cfg.StateDir = t.TempDir()
	return cfg
}

func TestShippedConfigIsTheDefault(t *testing.T) {
	cfg, err := config.Load(filepath.Join(testenv.Root(t), "configs", "imageapid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stripNodes(cfg), stripNodes(config.Default())) {
		t.Errorf("configs/imageapid.yaml differs from config.Default():\n%+v\n%+v", cfg, config.Default())
	}
	if len(cfg.Cameras) != 1 || cfg.Cameras[0].URL != "third_party/fixtures/vtest.avi" || !cfg.Cameras[0].Loop {
		t.Errorf("the shipped config must loop the sample video as its camera: %+v", cfg.Cameras)
	}
}

func stripNodes(c config.Config) config.Config {
	c.Estimators = nil
	c.Cameras = nil // the shipped config plays the sample video
	if len(c.Services) == 0 {
		c.Services = nil
	}
	if len(c.Models.PerModel) == 0 {
		c.Models.PerModel = nil
	}
	return c
}

func TestConfigRejectsTypos(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("http:\n  lisen: 127.0.0.1:1\n"), 0o644)
	if _, err := config.Load(p); err == nil || !strings.Contains(err.Error(), "lisen") {
		t.Errorf("a misspelt key must be an error naming it, got %v", err)
	}
	os.WriteFile(p, []byte("models:\n  delegate: tpu\n"), 0o644)
	if _, err := config.Load(p); err == nil || !strings.Contains(err.Error(), "tpu") {
		t.Errorf("an unknown delegate must be an error naming it, got %v", err)
	}
}

// startDaemon builds the daemon from cfg and serves it on a loopback port;
// stop shuts it down and fails the test unless that takes under 5 s.
func startDaemon(t *testing.T, cfg config.Config) (addr string, stop func()) {
	t.Helper()
	a, err := build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.runtime.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, a, cfg, "", slog.New(slog.DiscardHandler), ln) }()
	return ln.Addr().String(), func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("serve did not return within 5 s of shutdown")
		}
	}
}

func TestServeAndShutdown(t *testing.T) {
	addr, stop := startDaemon(t, testConfig(t))
	base := "http://" + addr
	fitReq, _ := http.NewRequest(http.MethodPost, base+"/face-detector-face-fitter/process/sample", strings.NewReader(`{"$image":"@@"}`))
	if resp, err := http.DefaultClient.Do(fitReq); err == nil {
		resp.Body.Close()
	}
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
		if path == "/metrics" {
			for _, want := range []string{
				`imageapid_http_requests_total{code="400",route="/face-detector-face-fitter/process/sample"} 1`,
				`imageapid_model_delegate{delegate="xnnpack",model="face_landmark"} 1`,
			} {
				if !strings.Contains(string(b), want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
		}
		if path == "/readyz" && !strings.Contains(string(b), `"face_landmark":"xnnpack"`) {
			t.Errorf("/readyz must say which delegate each model runs on: %s", b)
		}
	}
	stop()
}

func TestRefusesTamperedModel(t *testing.T) {
	cfg := testConfig(t)
	dir := t.TempDir()
	entries, _ := os.ReadDir(cfg.Models.Dir)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(cfg.Models.Dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "face_landmark.tflite" {
			b[len(b)/2] ^= 0xFF
		}
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
	}
	cfg.Models.Dir = dir
	_, err := build(cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("a model whose sha256 differs from the manifest must stop the daemon")
	}
	msg := err.Error()
	if !strings.Contains(msg, "face_landmark.tflite") || strings.Count(msg, "sha256") < 1 || len(strings.Fields(msg)) < 8 {
		t.Errorf("the error must name the file and both hashes: %v", err)
	}
}

// TestBinaryCheckConfig checks a config and its models without serving.
func TestBinaryCheckConfig(t *testing.T) {
	bin, err := daemonBinary()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "imageapid.yaml")
	writeConfig(t, cfgPath, "127.0.0.1:1", "")
	out, err := exec.Command(bin, "check-config", "-config", cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "config OK") || !strings.Contains(string(out), "face_landmark                delegate xnnpack") {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	writeConfig(t, cfgPath, "127.0.0.1:1", "cameras:\n  - id: x\n    url: /nonexistent.avi\n    estimators: [no-such-thing]\n")
	out, err = exec.Command(bin, "check-config", "-config", cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no-such-thing") {
		t.Errorf("check-config must reject an unknown camera estimator: %v\n%s", err, out)
	}
}
