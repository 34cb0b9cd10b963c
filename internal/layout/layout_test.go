package layout

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"imageapid/internal/testenv"
)

func TestFloors(t *testing.T) {
	root := testenv.Root(t)
	for _, rule := range []struct {
		pkgs      []string
		forbidden []string
		why       string
	}{
		{[]string{"./models/..."}, []string{"imageapid/estimators", "imageapid/fitting", "imageapid/daemon", "imageapid/camera", "imageapid/sessions", "imageapid/watchlist"},
			"models/ is the floor under the estimators"},
		{[]string{"./daemon", "./estimators/...", "./camera/...", "./sessions", "./watchlist", "./ui/..."}, []string{"imageapid/fitting"},
			"what the daemon runs never links the fitting code"},
	} {
		deps := goListDeps(t, root, rule.pkgs)
		for _, d := range deps {
			for _, f := range rule.forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%v imports %s: %s", rule.pkgs, d, rule.why)
				}
			}
		}
	}
}

func goListDeps(t *testing.T, root string, pkgs []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, pkgs...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %v: %v\n%s", pkgs, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", pkgs, err)
	}
	return strings.Fields(string(out))
}
