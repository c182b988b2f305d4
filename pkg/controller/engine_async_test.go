package controller

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// A webhook that does not answer holds back only its own Canary: the
// reconcile workers (two here) are not blocked while it hangs, so another
// Canary's release goes on and is promoted meanwhile.
func TestEngine_AHangingWebhookHoldsBackOnlyItsOwnCanary(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	h := newHarness(t)
	h.metrics.set(0)
	slow := []string{"slow-a", "slow-b", "slow-c"}
	for _, name := range slow {
		h.create(newDeployment(name, 1), newCanary(name, func(cd *flaggerv1beta1.Canary) {
			cd.Spec.Analysis.Webhooks = []flaggerv1beta1.CanaryWebhook{{Name: "hangs", URL: hang.URL, Timeout: "1m"}}
		}))
	}
	h.create(newDeployment("fast", 1), newCanary("fast", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.Iterations = ptr.To[int32](2)
	}))
	for _, name := range append(slow, "fast") {
		h.waitPhase(name, flaggerv1beta1.CanaryPhaseInitialized)
	}
	for _, name := range slow {
		h.setImage(name, "ghcr.io/example/podinfo:6.1.0")
	}
	for _, name := range slow {
		h.eventually(name+"'s webhook step claimed", func() (bool, string) {
			cd := h.canary(name)
			return cd.Status.StepStartedAt != nil, string(cd.Status.Phase)
		})
	}
	begin := time.Now()
	h.setImage("fast", "ghcr.io/example/podinfo:6.1.0")
	h.waitPhase("fast", flaggerv1beta1.CanaryPhaseSucceeded)
	t.Logf("the fast Canary was promoted in %s while three webhooks hung", time.Since(begin).Round(100*time.Millisecond))
	for _, name := range slow {
		if cd := h.canary(name); cd.Status.StepStartedAt == nil || cd.Status.Phase != flaggerv1beta1.CanaryPhaseProgressing {
			t.Errorf("%s: phase %s stepStartedAt %v; want its step still waiting for the webhook", name, cd.Status.Phase, cd.Status.StepStartedAt)
		}
	}
}
