package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicedev/sluice/internal/testenv"
)

// TestKubectlPlugin_RunsAsKubectlSluice: kubectl finds kubectl-sluice on
// PATH through its plugin discovery and runs it as `kubectl sluice`, with
// its exit code and error line. It needs bin/kubectl (hack/tool.sh kubectl,
// part of make tools-e2e) and is skipped without it.
func TestKubectlPlugin_RunsAsKubectlSluice(t *testing.T) {
	t.Parallel()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(root, "bin", "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skip("bin/kubectl is missing; `hack/tool.sh kubectl` (or make tools-e2e) builds it")
	}
	dir := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(dir, "kubectl-sluice"), "./cmd/kubectl-sluice")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-sluice: %v\n%s", err, out)
	}
	cd := playedCanary(t, "plugin", "failed-threshold", nil)

	run := func(args ...string) (string, string, int) {
		cmd := exec.CommandContext(t.Context(), kubectl, args...)
		cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+kubeconfig)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			return out.String(), errOut.String(), exit.ExitCode()
		case err != nil:
			t.Fatalf("running kubectl %v: %v", args, err)
		}
		return out.String(), errOut.String(), 0
	}
	if out, _, _ := run("plugin", "list"); !strings.Contains(out, filepath.Join(dir, "kubectl-sluice")) {
		t.Errorf("kubectl plugin list does not find kubectl-sluice:\n%s", out)
	}
	out, errOut, code := run("sluice", "list", "-n", cd.Namespace)
	if code != 0 || !strings.Contains(out, "podinfo   Failed") {
		t.Errorf("kubectl sluice list: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	out, _, code = run("sluice", "explain", "podinfo", "-n", cd.Namespace)
	if code != 0 || !strings.Contains(out, "metric request-success-rate measured 71.9, below the minimum 99") {
		t.Errorf("kubectl sluice explain: exit %d, stdout:\n%s", code, out)
	}
	_, errOut, code = run("sluice", "get", "nope", "-n", cd.Namespace)
	if code != 1 || errOut != "error: canary \"nope\" not found in namespace \"plugin\" (list them with: kubectl sluice list -A)\n" {
		t.Errorf("kubectl sluice get nope: exit %d, stderr %q", code, errOut)
	}
}
