//go:build e2e

package scenarios

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	istionetworking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// TestIstio_PromotesAHealthyRelease: a healthy new revision goes through
// 20, 40 and 60% of the traffic, then the primary runs it.
func TestIstio_PromotesAHealthyRelease(t *testing.T) {
	t.Parallel()
	s := newScenario(t, true)
	s.initialize(canaryFor(flaggerv1beta1.ProviderIstio, &flaggerv1beta1.CanaryAnalysis{
		StepWeight: ptr.To[int32](20), MaxWeight: ptr.To[int32](60),
		Metrics: meshChecks(), Webhooks: []flaggerv1beta1.CanaryWebhook{s.loadTest("")},
	}))

	s.release("6.1.0", 0)
	var canaryWeights seen[int32]
	s.waitPhase(flaggerv1beta1.CanaryPhaseSucceeded, 3*time.Minute, func(*flaggerv1beta1.Canary) error {
		w, err := s.vsWeights()
		if err == nil && w.canary > 0 {
			canaryWeights.add(w.canary)
		}
		return nil
	})
	if want := []int32{20, 40, 60}; !slices.Equal(canaryWeights, want) {
		t.Errorf("canary weights seen in the VirtualService = %v, want %v", canaryWeights, want)
	}
	if got := s.primaryImage(); got != image+"6.1.0" {
		t.Errorf("primary image = %s, want %s6.1.0", got, image)
	}
	s.expectAllTrafficToPrimary()
}

// TestIstio_RollsBackAFaultyRelease: a new revision answering 30% of
// requests with errors fails its checks; the primary keeps the old one.
func TestIstio_RollsBackAFaultyRelease(t *testing.T) {
	t.Parallel()
	s := newScenario(t, true)
	s.initialize(canaryFor(flaggerv1beta1.ProviderIstio, &flaggerv1beta1.CanaryAnalysis{
		StepWeight: ptr.To[int32](20), MaxWeight: ptr.To[int32](60),
		Metrics: meshChecks(), Webhooks: []flaggerv1beta1.CanaryWebhook{s.loadTest("")},
	}))

	s.release("6.2.0", 0.3)
	s.waitProgressing()
	s.waitPhase(flaggerv1beta1.CanaryPhaseFailed, 3*time.Minute, nil)
	if got := s.primaryImage(); got != image+"6.0.0" {
		t.Errorf("primary image = %s, want it untouched: %s6.0.0", got, image)
	}
	cd, err := s.canary()
	if err != nil {
		t.Fatal(err)
	}
	if rate := lastValue(cd.Status.Analysis, "request-success-rate"); rate < 0 || rate >= 99 {
		t.Errorf("last measured success rate = %v, want a value below 99", rate)
	}
	s.expectAllTrafficToPrimary()
}

// TestIstio_WaitsForTheConfirmPromotionGate: with a confirm-promotion
// webhook on the load tester's gate, the analysis stops in
// WaitingPromotion at the maximum weight until the gate is opened.
func TestIstio_WaitsForTheConfirmPromotionGate(t *testing.T) {
	t.Parallel()
	s := newScenario(t, false)
	s.initialize(canaryFor(flaggerv1beta1.ProviderIstio, &flaggerv1beta1.CanaryAnalysis{
		StepWeight: ptr.To[int32](50), MaxWeight: ptr.To[int32](50),
		Webhooks: []flaggerv1beta1.CanaryWebhook{{
			Name: "confirm", Type: flaggerv1beta1.ConfirmPromotionHook, URL: s.loadTester + "/gate/check",
		}},
	}))

	s.release("6.1.0", 0)
	s.waitPhase(flaggerv1beta1.CanaryPhaseWaitingPromotion, 2*time.Minute, nil)
	// It holds there through two more analysis intervals.
	hold := time.Now().Add(20 * time.Second)
	s.eventually(30*time.Second, "holding in WaitingPromotion for 20s", func() (bool, error) {
		cd, err := s.canary()
		if err != nil {
			return false, err
		}
		if cd.Status.Phase != flaggerv1beta1.CanaryPhaseWaitingPromotion {
			return false, fmt.Errorf("%w: phase %s before the gate was opened", errStop, cd.Status.Phase)
		}
		return time.Now().After(hold), nil
	})
	if got := s.primaryImage(); got != image+"6.0.0" {
		t.Fatalf("primary image before the gate opened = %s, want %s6.0.0", got, image)
	}

	s.openGate()
	s.logf("opened the gate")
	s.waitPhase(flaggerv1beta1.CanaryPhaseSucceeded, time.Minute, nil)
	if got := s.primaryImage(); got != image+"6.1.0" {
		t.Errorf("primary image = %s, want %s6.1.0", got, image)
	}
}

// TestIstio_ABTestingByHeader: requests with x-canary: insider go to the
// canary for three iterations, then the canary is promoted.
func TestIstio_ABTestingByHeader(t *testing.T) {
	t.Parallel()
	s := newScenario(t, true)
	s.initialize(canaryFor(flaggerv1beta1.ProviderIstio, &flaggerv1beta1.CanaryAnalysis{
		Iterations: ptr.To[int32](3),
		Match:      []flaggerv1beta1.HTTPMatchConditions{{Headers: map[string]flaggerv1beta1.HeaderMatch{"x-canary": {Exact: ptr.To("insider")}}}},
		Metrics:    meshChecks(),
		Webhooks:   []flaggerv1beta1.CanaryWebhook{s.loadTest("-H 'x-canary: insider' ")},
	}))

	s.release("6.1.0", 0)
	matched := false
	s.waitPhase(flaggerv1beta1.CanaryPhaseSucceeded, 3*time.Minute, func(*flaggerv1beta1.Canary) error {
		matched = matched || s.routesHeaderToCanary()
		return nil
	})
	if !matched {
		t.Error("the VirtualService never routed x-canary: insider to the canary")
	}
	if got := s.primaryImage(); got != image+"6.1.0" {
		t.Errorf("primary image = %s, want %s6.1.0", got, image)
	}
	s.expectAllTrafficToPrimary()
}

// routesHeaderToCanary says whether the VirtualService sends all requests
// with x-canary: insider to the canary.
func (s *scenario) routesHeaderToCanary() bool {
	vs := &networkingv1.VirtualService{}
	if err := s.get(app, vs); err != nil {
		return false
	}
	for _, h := range vs.Spec.Http {
		matches := slices.ContainsFunc(h.Match, func(m *istionetworking.HTTPMatchRequest) bool {
			return m.GetHeaders()["x-canary"].GetExact() == "insider"
		})
		toCanary := slices.ContainsFunc(h.Route, func(r *istionetworking.HTTPRouteDestination) bool {
			return r.GetDestination().GetHost() == app+"-canary" && r.GetWeight() == 100
		})
		if matches && toCanary {
			return true
		}
	}
	return false
}

// TestIstio_ResumesTheAnalysisAfterSluiceIsKilled: Sluice killed with
// SIGKILL in the middle of an analysis resumes it where it was after a
// restart and promotes once.
func TestIstio_ResumesTheAnalysisAfterSluiceIsKilled(t *testing.T) {
	t.Parallel()
	s := newScenario(t, true)
	s.initialize(canaryFor(flaggerv1beta1.ProviderIstio, &flaggerv1beta1.CanaryAnalysis{
		StepWeight: ptr.To[int32](20), MaxWeight: ptr.To[int32](60),
		Metrics: meshChecks(), Webhooks: []flaggerv1beta1.CanaryWebhook{s.loadTest("")},
	}))

	s.release("6.1.0", 0)
	var atKill int32
	s.eventually(2*time.Minute, "canary weight 40", func() (bool, error) {
		cd, err := s.canary()
		if err != nil {
			return false, err
		}
		atKill = cd.Status.CanaryWeight
		return cd.Status.Phase == flaggerv1beta1.CanaryPhaseProgressing && atKill >= 40, nil
	})
	s.restartSluice()
	s.logf("killed sluice at canary weight %d and started it again", atKill)

	s.waitPhase(flaggerv1beta1.CanaryPhaseSucceeded, 2*time.Minute, func(cd *flaggerv1beta1.Canary) error {
		if cd.Status.Phase == flaggerv1beta1.CanaryPhaseProgressing && cd.Status.CanaryWeight < atKill {
			return fmt.Errorf("%w: the analysis restarted: canary weight %d after the restart, %d before", errStop, cd.Status.CanaryWeight, atKill)
		}
		if w, err := s.vsWeights(); err == nil && w.canary > 0 && w.canary < atKill {
			return fmt.Errorf("%w: the VirtualService went back to canary weight %d after the restart, %d before", errStop, w.canary, atKill)
		}
		return nil
	})
	if got := s.primaryImage(); got != image+"6.1.0" {
		t.Errorf("primary image = %s, want %s6.1.0", got, image)
	}
	if n := s.eventCount("Copying " + app + " template spec"); n != 1 {
		t.Errorf("the canary was copied into the primary %d times, want once", n)
	}
}

// expectAllTrafficToPrimary checks that the VirtualService ends at 100/0.
func (s *scenario) expectAllTrafficToPrimary() {
	s.t.Helper()
	s.eventually(30*time.Second, "VirtualService at primary 100, canary 0", func() (bool, error) {
		w, err := s.vsWeights()
		return w == weights{primary: 100}, err
	})
}

// eventCount sums the counts of the namespace's events whose message
// starts with prefix.
func (s *scenario) eventCount(prefix string) int32 {
	s.t.Helper()
	var events corev1.EventList
	if err := s.c.List(s.t.Context(), &events, client.InNamespace(s.ns)); err != nil {
		s.t.Fatal(err)
	}
	var n int32
	for _, e := range events.Items {
		if strings.HasPrefix(e.Message, prefix) {
			n += max(e.Count, 1)
		}
	}
	return n
}

// lastValue is the last measured value of the named check, -1 if none.
func lastValue(results []flaggerv1beta1.CanaryCheckResult, name string) float64 {
	for i := len(results) - 1; i >= 0; i-- {
		if results[i].Name == name && results[i].Value != nil {
			return *results[i].Value
		}
	}
	return -1
}
