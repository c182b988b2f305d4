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

// TestKubectl_AbortRetryAndPromoteThroughTheController: the requests of
// kubectl sluice go through the running controller: abort rolls a release
// back at once, retry analyses the failed revision again, and promote
// --full promotes it, each honoured once and recorded with who asked.
func TestKubectl_AbortRetryAndPromoteThroughTheController(t *testing.T) {
	t.Parallel()
	s := newScenario(t, false)
	s.initialize(canaryFor(flaggerv1beta1.ProviderKubernetes, &flaggerv1beta1.CanaryAnalysis{
		Interval: "1m", Iterations: ptr.To[int32](10), // only the requests move this release on
	}))
	s.release("6.1.0", 0)
	s.waitPhase(flaggerv1beta1.CanaryPhaseProgressing, time.Minute, nil)

	request := func(want flaggerv1beta1.CanaryPhase, args ...string) {
		t.Helper()
		out, errOut, code := s.kubectlSluice(append(args, app, "-n", s.ns, "--reason", "e2e", "--timeout", "90s")...)
		if code != 0 {
			t.Fatalf("kubectl sluice %v: exit %d\n%s%s", args, code, out, errOut)
		}
		s.logf("kubectl sluice %v:\n%s", args, out)
		s.waitPhase(want, 90*time.Second, nil)
		cd, err := s.canary()
		if err != nil {
			t.Fatal(err)
		}
		if lr := cd.Status.LastRequest; lr == nil || lr.Outcome != flaggerv1beta1.RequestHonoured || lr.Reason != "e2e" || lr.By == "" {
			t.Fatalf("after kubectl sluice %v: lastRequest %+v, want it honoured with the reason and the caller", args, lr)
		}
	}
	request(flaggerv1beta1.CanaryPhaseFailed, "abort")
	if got := s.primaryImage(); got != image+"6.0.0" {
		t.Fatalf("primary image after abort = %s, want the old one", got)
	}
	request(flaggerv1beta1.CanaryPhaseProgressing, "retry")
	request(flaggerv1beta1.CanaryPhaseSucceeded, "promote", "--full")
	s.eventually(time.Minute, "the primary on the promoted revision", func() (bool, error) {
		return s.primaryImage() == image+"6.1.0", nil
	})
}
