package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imageapid/internal/testenv"
	"imageapid/models"
)

// TestGPUFallbackIsReported asks for the GPU delegate on a box without its
// library (this one): the daemon must serve on XNNPACK and say so in /readyz
// and /metrics.
func TestGPUFallbackIsReported(t *testing.T) {
	cfg := testConfig(t)
	cfg.MQTT.Enabled = false
	cfg.Models.Delegate = models.DelegateGPU
	addr, stop := startDaemon(t, cfg)
	defer stop()
	const want = "xnnpack (fallback from gpu: libtensorflowlite_gpu_delegate.so: cannot open shared object file"
	for path, line := range map[string]string{
		"/readyz":  `"face_landmark":"` + want,
		"/metrics": `imageapid_model_delegate{delegate="` + want,
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), line) {
			t.Errorf("%s must report the fallback (%s):\n%.2000s", path, line, b)
		}
	}
}

// TestBinaryCheckConfigReportsDelegates runs `imageapid check-config` with an
// Edge TPU config on a box without libedgetpu, and with nnapi.
func TestBinaryCheckConfigReportsDelegates(t *testing.T) {
	bin, err := daemonBinary()
	if err != nil {
		t.Fatal(err)
	}
	root := testenv.Root(t)
	cfgPath := filepath.Join(t.TempDir(), "imageapid.yaml")
	write := func(delegate string) {
		body := fmt.Sprintf("models:\n  manifest: %s\n  dir: %s\n  delegate: xnnpack\n  per_model:\n    face_landmark: {delegate: %s}\nmqtt:\n  enabled: false\n",
			filepath.Join(root, "models", "manifest.json"), filepath.Join(root, "models", "build"), delegate)
		if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("edgetpu")
	out, err := exec.Command(bin, "check-config", "-config", cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "config OK") ||
		!strings.Contains(string(out), "face_landmark                delegate xnnpack (fallback from edgetpu: libedgetpu.so.1: cannot open shared object file") ||
		!strings.Contains(string(out), "face_detection_full_range    delegate xnnpack\n") ||
		strings.Count(string(out), "runs on xnnpack instead of edgetpu") != 1 {
		t.Errorf("check-config must report the fallback once, and xnnpack for the others: %v\n%s", err, out)
	}
	write("nnapi")
	out, err = exec.Command(bin, "check-config", "-config", cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "only on Android") {
		t.Errorf("check-config must refuse nnapi on Linux, saying why: %v\n%s", err, out)
	}
}
