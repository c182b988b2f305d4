//go:build e2e

package scenarios

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/testenv"
)

// plugin is kubectl-sluice built from this tree, in a directory of its own
// that the kubectl scenario puts on PATH.
var plugin struct {
	once sync.Once
	dir  string
	err  error
}

// kubectlSluice runs `kubectl sluice args...` with bin/kubectl, which finds
// kubectl-sluice through its plugin discovery on PATH.
func (s *scenario) kubectlSluice(args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		s.t.Fatal(err)
	}
	kubectl := filepath.Join(root, "bin", "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		s.t.Fatalf("bin/kubectl is missing: make tools-e2e builds it (%v)", err)
	}
	plugin.once.Do(func() {
		plugin.dir = filepath.Join(suite.dir, "plugin")
		build := exec.Command("go", "build", "-o", filepath.Join(plugin.dir, "kubectl-sluice"), "./cmd/kubectl-sluice")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			plugin.err = errors.New("building kubectl-sluice: " + err.Error() + "\n" + string(out))
		}
	})
	if plugin.err != nil {
		s.t.Fatal(plugin.err)
	}
	cmd := exec.CommandContext(s.t.Context(), kubectl, append([]string{"sluice"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+plugin.dir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"KUBECONFIG="+suite.cluster.KubeconfigPath)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		s.t.Fatalf("running kubectl sluice %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// TestKubectl_SluiceExplainsAGateAndOpensIt: `kubectl sluice`, found by
// kubectl's plugin discovery, explains a release held by a closed
// confirm-promotion gate, opens the gate, and shows the promoted Canary.
func TestKubectl_SluiceExplainsAGateAndOpensIt(t *testing.T) {
	t.Parallel()
	s := newScenario(t, false)
	s.initialize(canaryFor(flaggerv1beta1.ProviderKubernetes, &flaggerv1beta1.CanaryAnalysis{
		Iterations: ptr.To[int32](1),
		Webhooks: []flaggerv1beta1.CanaryWebhook{{
			Name: "approve", Type: flaggerv1beta1.ConfirmPromotionHook, URL: s.loadTester + "/gate/check",
		}},
	}))
	s.release("6.1.0", 0)
	s.waitPhase(flaggerv1beta1.CanaryPhaseWaitingPromotion, 2*time.Minute, nil)

	out, errOut, code := s.kubectlSluice("explain", app, "-n", s.ns)
	words := strings.Join(strings.Fields(out), " ") // explain wraps its lines
	for _, want := range []string{
		"passed its analysis and has waited for the confirm-promotion gate",
		"Open it with: kubectl sluice gate open " + app + " -n " + s.ns,
	} {
		if code != 0 || !strings.Contains(words, want) {
			t.Errorf("kubectl sluice explain: exit %d, want %q in:\n%s%s", code, want, out, errOut)
		}
	}
	s.logf("kubectl sluice explain:\n%s", out)

	out, errOut, code = s.kubectlSluice("gate", "open", app, "-n", s.ns)
	if code != 0 || !strings.Contains(out, "gate opened for "+app+"."+s.ns+" (directly)") {
		t.Fatalf("kubectl sluice gate open: exit %d\n%s%s", code, out, errOut)
	}
	s.waitPhase(flaggerv1beta1.CanaryPhaseSucceeded, time.Minute, nil)

	out, errOut, code = s.kubectlSluice("get", app, "-n", s.ns)
	if code != 0 || !strings.Contains(out, "Phase:     Succeeded") || !strings.Contains(out, "primary 100%, canary 0%") {
		t.Errorf("kubectl sluice get: exit %d\n%s%s", code, out, errOut)
	}
	_, errOut, code = s.kubectlSluice("promote", app, "-n", s.ns)
	if want := "error: cannot promote canary " + s.ns + "/" + app + ": it is Succeeded: its last revision is already promoted\n"; code != 1 || errOut != want {
		t.Errorf("kubectl sluice promote of a Succeeded canary: exit %d, stderr %q, want %q", code, errOut, want)
	}
}
