// Tests for the unit files in this directory, which are installed as they are.
package systemd_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitsInTempDir copies both units with ExecStart pointing at a binary that
// exists here, since `systemd-analyze verify` checks it.
func unitsInTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	service, err := os.ReadFile("imageapid.service")
	if err != nil {
		t.Fatal(err)
	}
	const execStart = "ExecStart=/usr/bin/imageapid -config /etc/imageapid/imageapid.yaml"
	if !bytes.Contains(service, []byte(execStart+"\n")) {
		t.Fatalf("imageapid.service lost its %q line", execStart)
	}
	service = bytes.Replace(service, []byte("ExecStart=/usr/bin/imageapid"), []byte("ExecStart=/bin/true"), 1)
	socket, err := os.ReadFile("imageapid.socket")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"imageapid.service": service, "imageapid.socket": socket} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func systemdAnalyze(t *testing.T, dir string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestUnitsVerify(t *testing.T) {
	dir := unitsInTempDir(t)
	out := systemdAnalyze(t, dir, "verify", "./imageapid.service", "./imageapid.socket")
	// verify exits 0 on unknown keys and bad values, so read what it says.
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) != "" {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

func TestServiceExposure(t *testing.T) {
	dir := unitsInTempDir(t)
	out := systemdAnalyze(t, dir, "security", "--offline=true", "./imageapid.service")
	m := regexp.MustCompile(`Overall exposure level for imageapid\.service: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	exposure, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %.1f", exposure)
	if exposure > 2.0 { // issue 16: at or below 2.0
		t.Errorf("exposure %.1f, want <= 2.0:\n%s", exposure, out)
	}
	// Hardening must not take away what the daemon needs.
	for _, want := range []string{
		"Service has a device ACL with some special devices: char-rtc:r char-video4linux:rw",
		"Service may allocate Internet sockets",
		"Service has strict read-only access to the OS file hierarchy",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("security report lacks %q", want)
		}
	}
}

// TestUnitSettings checks the settings the daemon's behaviour depends on.
func TestUnitSettings(t *testing.T) {
	service := readUnit(t, "imageapid.service")
	for _, want := range []string{
		"Type=notify", "WatchdogSec=", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
		"StateDirectory=imageapid", "DynamicUser=yes", "SupplementaryGroups=video",
		"DeviceAllow=char-video4linux rw", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"NoNewPrivileges=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
		"SystemCallFilter=@system-service",
	} {
		if !hasLine(service, want) {
			t.Errorf("imageapid.service lacks %q", want)
		}
	}
	if hasLine(service, "PrivateDevices=yes") {
		t.Error("PrivateDevices=yes hides /dev/video*")
	}
	socket := readUnit(t, "imageapid.socket")
	for _, want := range []string{"ListenStream=127.0.0.1:8080", "FileDescriptorName=http", "Service=imageapid.service"} {
		if !hasLine(socket, want) {
			t.Errorf("imageapid.socket lacks %q", want)
		}
	}
}

func readUnit(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

func hasLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
