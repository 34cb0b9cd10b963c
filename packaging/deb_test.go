// Package packaging_test builds the .deb the way `make deb` does, installs it
// into a fresh root with dpkg, and checks what an edge box would get.
package packaging_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"imageapid/daemon/config"
	"imageapid/internal/testenv"
)

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: the package test needs Debian's dpkg and systemd tools", tool)
		}
	}
}

func TestDebInstallsIntoAFreshRoot(t *testing.T) {
	need(t, "dpkg", "dpkg-deb", "systemd-analyze", "systemctl", "objdump")
	root := testenv.Root(t)
	tmp := t.TempDir()
	arch := runtime.GOARCH
	tflite := filepath.Join(root, "third_party", "tflite")

	// The binary as `make build-installed` builds it.
	bin := filepath.Join(tmp, "imageapid")
	run(t, root, []string{
		"CGO_CFLAGS=-I" + filepath.Join(tflite, "include"),
		"CGO_LDFLAGS=-L" + filepath.Join(tflite, "linux_"+arch) + " -Wl,-rpath,/usr/lib/imageapid",
	}, "go", "build", "-trimpath", "-ldflags", "-X main.version=0.0.1+test", "-o", bin, "./daemon")
	deb := strings.TrimSpace(run(t, root, []string{"VERSION=0.0.1+test", "ARCH=" + arch, "BIN=" + bin, "OUT=" + tmp},
		"./scripts/deb.sh"))
	if filepath.Base(deb) != "imageapid_0.0.1+test_"+arch+".deb" {
		t.Fatalf("deb.sh built %q", deb)
	}

	// The file list is install-tree.sh's (the one `make install` installs), nothing else.
	want := strings.Fields(run(t, root, []string{"ARCH=" + arch}, "./scripts/install-tree.sh", "list"))
	for _, must := range []string{"/usr/bin/imageapid", "/usr/lib/imageapid/libtensorflowlite_c.so",
		"/usr/lib/imageapid/models/manifest.json", "/usr/lib/imageapid/models/face_landmark.tflite",
		"/lib/systemd/system/imageapid.service", "/lib/systemd/system/imageapid.socket", "/etc/imageapid/imageapid.yaml"} {
		if !slices.Contains(want, must) {
			t.Errorf("install-tree.sh does not install %s", must)
		}
	}
	var got []string
	for _, l := range strings.Split(run(t, tmp, nil, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && !strings.HasPrefix(f[0], "d") {
			got = append(got, strings.TrimPrefix(f[5], "."))
		}
		if len(f) >= 2 && f[1] != "root/root" {
			t.Errorf("%s is owned by %s, not root", f[len(f)-1], f[1])
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("package files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	depends := run(t, tmp, nil, "dpkg-deb", "-f", deb, "Depends")
	for _, d := range []string{"libc6 (>=", "libstdc++6", "libopencv-core406", "libopencv-videoio406"} {
		if !strings.Contains(depends, d) {
			t.Errorf("Depends lacks %s: %s", d, depends)
		}
	}

	// Install into an empty root, the way an image builder would.
	r := filepath.Join(tmp, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		os.MkdirAll(filepath.Join(r, d), 0o755)
	}
	os.WriteFile(filepath.Join(r, "var/lib/dpkg/status"), nil, 0o644)
	dpkg := []string{"--root=" + r, "--log=" + filepath.Join(tmp, "dpkg.log"), "--force-script-chrootless", "--force-not-root"}
	run(t, tmp, nil, "dpkg", append(dpkg, "--force-depends", "-i", deb)...)
	status := run(t, tmp, nil, "dpkg", "--root="+r, "-s", "imageapid")
	if !strings.Contains(status, "Status: install ok installed") ||
		!strings.Contains(status, "Conffiles:\n /etc/imageapid/imageapid.yaml ") {
		t.Errorf("dpkg status after install:\n%s", status)
	}
	for _, link := range []string{"etc/systemd/system/multi-user.target.wants/imageapid.service",
		"etc/systemd/system/sockets.target.wants/imageapid.socket"} {
		if _, err := os.Lstat(filepath.Join(r, link)); err != nil {
			t.Errorf("postinst must enable the units: %v", err)
		}
	}

	// The conffile is the default config with the installed paths and no camera.
	conf := filepath.Join(r, "etc/imageapid/imageapid.yaml")
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Models.Manifest != "/usr/lib/imageapid/models/manifest.json" || cfg.Models.Dir != "/usr/lib/imageapid/models" ||
		len(cfg.Cameras) != 0 || cfg.StateDir != "" {
		t.Errorf("installed config: models %+v, cameras %v, state_dir %q", cfg.Models, cfg.Cameras, cfg.StateDir)
	}
	def := config.Default()
	cfg.Models.Manifest, cfg.Models.Dir, cfg.Estimators, cfg.Cameras = def.Models.Manifest, def.Models.Dir, nil, nil
	if len(cfg.Services) == 0 {
		cfg.Services = nil
	}
	if len(cfg.Models.PerModel) == 0 {
		cfg.Models.PerModel = nil
	}
	if !reflect.DeepEqual(cfg, def) {
		t.Errorf("the installed config must keep every other default:\n%+v\n%+v", cfg, def)
	}

	// The binary finds TFLite through its run path.
	ef, err := elf.Open(filepath.Join(r, "usr/bin/imageapid"))
	if err != nil {
		t.Fatal(err)
	}
	rp, _ := ef.DynString(elf.DT_RUNPATH)
	ef.Close()
	if !slices.Equal(rp, []string{"/usr/lib/imageapid"}) {
		t.Errorf("RUNPATH %v, want /usr/lib/imageapid", rp)
	}
	// It checks the installed config and models (paths moved under the test
	// root; the library from there too, as /usr/lib/imageapid is not ours).
	body, _ := os.ReadFile(conf)
	moved := strings.ReplaceAll(string(body), " /usr/lib/imageapid/", " "+r+"/usr/lib/imageapid/")
	movedConf := filepath.Join(tmp, "moved.yaml")
	os.WriteFile(movedConf, []byte(moved), 0o644)
	out := run(t, tmp, []string{"LD_LIBRARY_PATH=" + filepath.Join(r, "usr/lib/imageapid")},
		filepath.Join(r, "usr/bin/imageapid"), "check-config", "-config", movedConf)
	if !strings.Contains(out, "config OK") || !strings.Contains(out, "face_landmark                delegate xnnpack") {
		t.Errorf("the installed binary's check-config:\n%s", out)
	}

	// systemd-analyze verify on the installed units, against a root that has
	// systemd's own targets and /bin/kill as every box does.
	for _, f := range []string{"sysinit.target", "basic.target", "multi-user.target", "sockets.target",
		"network-online.target", "shutdown.target", "sysinit.target", "paths.target", "timers.target",
		"slices.target", "local-fs.target", "swap.target", "system.slice", "-.slice", "network.target"} {
		if b, err := os.ReadFile(filepath.Join("/lib/systemd/system", f)); err == nil {
			os.MkdirAll(filepath.Join(r, "usr/lib/systemd/system"), 0o755)
			os.WriteFile(filepath.Join(r, "usr/lib/systemd/system", f), b, 0o644)
		}
	}
	if kill, err := os.ReadFile("/bin/kill"); err == nil {
		os.MkdirAll(filepath.Join(r, "bin"), 0o755)
		os.WriteFile(filepath.Join(r, "bin/kill"), kill, 0o755)
	}
	cmd := exec.Command("systemd-analyze", "verify", "--root="+r, "imageapid.service", "imageapid.socket")
	vout, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(vout), "ignoring") || strings.Contains(string(vout), "Unknown") ||
		strings.Contains(string(vout), "not executable") || strings.Contains(string(vout), "not found") {
		t.Errorf("systemd-analyze verify --root on the installed units: %v\n%s", err, vout)
	}

	// Purge removes everything, the conffile and the enablement links included.
	run(t, tmp, nil, "dpkg", append(dpkg, "--purge", "imageapid")...)
	for _, f := range append(want, "/etc/systemd/system/multi-user.target.wants/imageapid.service") {
		if _, err := os.Lstat(filepath.Join(r, f)); err == nil {
			t.Errorf("%s survives a purge", f)
		}
	}
}

// TestInstallAndUninstall runs `make install` and `make uninstall` into a
// DESTDIR with a prefix other than /usr.
func TestInstallAndUninstall(t *testing.T) {
	root := testenv.Root(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "imageapid")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755) // the file set, not the binary, is under test here
	env := []string{"DESTDIR=" + filepath.Join(tmp, "dest"), "PREFIX=/opt/imageapid", "SYSCONFDIR=/opt/imageapid/etc",
		"UNITDIR=/etc/systemd/system", "ARCH=" + runtime.GOARCH, "BIN=" + bin}
	run(t, root, env, "./scripts/install-tree.sh", "install")
	list := strings.Fields(run(t, root, env, "./scripts/install-tree.sh", "list"))
	for _, f := range list {
		if _, err := os.Stat(filepath.Join(tmp, "dest", f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(tmp, "dest/etc/systemd/system/imageapid.service"))
	if !strings.Contains(string(unit), "ExecStart=/opt/imageapid/bin/imageapid -config /opt/imageapid/etc/imageapid/imageapid.yaml\n") {
		t.Errorf("the unit must start the installed binary with the installed config")
	}
	cfg, err := config.Load(filepath.Join(tmp, "dest/opt/imageapid/etc/imageapid/imageapid.yaml"))
	if err != nil || cfg.Models.Dir != "/opt/imageapid/lib/imageapid/models" {
		t.Errorf("installed config: %v %+v", err, cfg.Models)
	}
	run(t, root, env, "./scripts/install-tree.sh", "uninstall")
	var left []string
	filepath.Walk(filepath.Join(tmp, "dest"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("uninstall left %v", left)
	}
}
