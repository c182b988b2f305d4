//go:build e2e

package scenarios

import (
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// TestKubernetes_BlueGreenKeepsTheApexOnThePrimary: with the kubernetes
// provider, as in Flagger, the apex Service never selects the canary: the
// analysis tests <apex>-canary, and the primary's rolling update is the
// switch.
func TestKubernetes_BlueGreenKeepsTheApexOnThePrimary(t *testing.T) {
	t.Parallel()
	s := newScenario(t, false)
	s.initialize(canaryFor(flaggerv1beta1.ProviderKubernetes, &flaggerv1beta1.CanaryAnalysis{Iterations: ptr.To[int32](2)}))
	// The status is written before the Services it implies (write-ahead).
	s.eventually(30*time.Second, "the apex Service selecting the primary", func() (bool, error) {
		return maps.Equal(s.apexSelector(), map[string]string{"app": app + "-primary"}), nil
	})

	s.release("6.1.0", 0)
	var selectors seen[string]
	s.waitPhase(flaggerv1beta1.CanaryPhaseSucceeded, 2*time.Minute, func(*flaggerv1beta1.Canary) error {
		if sel := s.apexSelector(); sel != nil {
			selectors.add(sel["app"])
		}
		return nil
	})
	if want := (seen[string]{app + "-primary"}); !slices.Equal(selectors, want) {
		t.Errorf("apex Service selected app=%v during the release, want %v", selectors, want)
	}
	if got := s.primaryImage(); got != image+"6.1.0" {
		t.Errorf("primary image = %s, want %s6.1.0", got, image)
	}
}

// apexSelector is the apex Service's selector, nil if it cannot be read.
func (s *scenario) apexSelector() map[string]string {
	svc := &corev1.Service{}
	if err := s.get(app, svc); err != nil {
		return nil
	}
	return svc.Spec.Selector
}

// TestKubernetes_PromotesATrackedConfigMapChange: a change to a ConfigMap
// the target mounts is a new revision; once promoted, the primary's copy
// (<name>-primary) carries the new data.
func TestKubernetes_PromotesATrackedConfigMapChange(t *testing.T) {
	t.Parallel()
	s := newScenario(t, false)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: app + "-config"}, Data: map[string]string{"color": "blue"}}
	d := podinfo()
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{
		ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}},
	}}
	cd := canaryFor(flaggerv1beta1.ProviderKubernetes, &flaggerv1beta1.CanaryAnalysis{Iterations: ptr.To[int32](1)})
	s.create(cm, d, cd)
	s.waitPhase(flaggerv1beta1.CanaryPhaseInitialized, 90*time.Second, nil)
	if got := s.primaryConfig(); got != "blue" {
		t.Fatalf("%s-primary color after initialization = %q, want blue", cm.Name, got)
	}

	before := cm.DeepCopy()
	cm.Data["color"] = "green"
	if err := s.c.Patch(s.t.Context(), cm, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	s.logf("changed %s", cm.Name)
	s.waitProgressing()
	s.waitPhase(flaggerv1beta1.CanaryPhaseSucceeded, 2*time.Minute, nil)
	if got := s.primaryConfig(); got != "green" {
		t.Errorf("%s-primary color after promotion = %q, want green", cm.Name, got)
	}
	if got := s.primaryImage(); got != image+"6.0.0" {
		t.Errorf("primary image = %s, want it unchanged: %s6.0.0", got, image)
	}
}

// primaryConfig is the color in the primary's copy of the ConfigMap.
func (s *scenario) primaryConfig() string {
	s.t.Helper()
	cm := &corev1.ConfigMap{}
	if err := s.get(app+"-config-primary", cm); err != nil {
		s.t.Fatalf("reading the primary's ConfigMap: %v", err)
	}
	return cm.Data["color"]
}
