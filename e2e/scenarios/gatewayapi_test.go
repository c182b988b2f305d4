//go:build e2e

package scenarios

import (
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/e2e/meshsim"
)

// TestGatewayAPI_PromotesAHealthyRelease: with the Gateway API provider,
// a healthy new revision goes through 20, 40 and 60% of the traffic in
// the HTTPRoute, measured by the builtin checks on the application's own
// request metrics, then the primary runs it.
func TestGatewayAPI_PromotesAHealthyRelease(t *testing.T) {
	t.Parallel()
	s := newProviderScenario(t, meshsim.ProviderGatewayAPI)
	cd := canaryFor(flaggerv1beta1.ProviderGatewayAPIV1, &flaggerv1beta1.CanaryAnalysis{
		StepWeight: ptr.To[int32](20), MaxWeight: ptr.To[int32](60),
		Metrics: meshChecks(), Webhooks: []flaggerv1beta1.CanaryWebhook{s.loadTest("")},
	})
	// The parent Gateway must exist (Sluice checks it); the simulator
	// plays its data plane, so no controller needs to program it.
	cd.Spec.Service.GatewayRefs = []flaggerv1beta1.ParentReference{{Name: "public"}}
	s.initialize(cd, &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "public"},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "simulated", Listeners: []gatewayv1.Listener{
			{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType},
		}},
	})

	s.release("6.1.0", 0)
	var canaryWeights seen[int32]
	successRate := -1.0
	s.waitPhase(flaggerv1beta1.CanaryPhaseSucceeded, 3*time.Minute, func(cd *flaggerv1beta1.Canary) error {
		if rate := lastValue(cd.Status.Analysis, "request-success-rate"); rate >= 0 {
			successRate = rate
		}
		w, err := s.httpRouteWeights()
		if err == nil && w.canary > 0 {
			canaryWeights.add(w.canary)
		}
		return nil
	})
	if want := []int32{20, 40, 60}; !slices.Equal(canaryWeights, want) {
		t.Errorf("canary weights seen in the HTTPRoute = %v, want %v", canaryWeights, want)
	}
	if got := s.primaryImage(); got != image+"6.1.0" {
		t.Errorf("primary image = %s, want %s6.1.0", got, image)
	}
	if successRate < 99 {
		t.Errorf("last measured success rate = %v, want at least 99 (-1: never measured)", successRate)
	}
	s.eventually(30*time.Second, "HTTPRoute at primary 100, canary 0", func() (bool, error) {
		w, err := s.httpRouteWeights()
		return w == weights{primary: 100}, err
	})
}

// httpRouteWeights reads the backend weights of the HTTPRoute's last rule,
// the default one.
func (s *scenario) httpRouteWeights() (weights, error) {
	hr := &gatewayv1.HTTPRoute{}
	if err := s.get(app, hr); err != nil {
		return weights{}, err
	}
	if len(hr.Spec.Rules) == 0 {
		return weights{}, fmt.Errorf("HTTPRoute %s has no rules", app)
	}
	var w weights
	for _, b := range hr.Spec.Rules[len(hr.Spec.Rules)-1].BackendRefs {
		switch string(b.Name) {
		case app + "-primary":
			w.primary = ptr.Deref(b.Weight, 1)
		case app + "-canary":
			w.canary = ptr.Deref(b.Weight, 1)
		}
	}
	return w, nil
}
