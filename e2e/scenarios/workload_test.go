//go:build e2e

package scenarios

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Annotations the simulated mesh reads from the pod template.
const (
	errorRateAnnotation = "sim.sluice.dev/error-rate"
	latencyAnnotation   = "sim.sluice.dev/latency-ms"
)

const image = "ghcr.io/stefanprodan/podinfo:"

// podinfo is the target Deployment: two replicas of podinfo:6.0.0 whose
// simulated pods answer without errors in 20ms.
func podinfo() *appsv1.Deployment {
	labels := map[string]string{"app": app}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{errorRateAnnotation: "0", latencyAnnotation: "20"}},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers: []corev1.Container{{
						Name: app, Image: image + "6.0.0",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
					}},
				},
			},
		},
	}
}

// canaryFor returns the podinfo Canary with the provider and analysis.
func canaryFor(provider string, analysis *flaggerv1beta1.CanaryAnalysis) *flaggerv1beta1.Canary {
	if analysis.Interval == "" {
		analysis.Interval = "10s" // the manager's minimum
	}
	if analysis.Threshold == 0 {
		analysis.Threshold = 2
	}
	return &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: flaggerv1beta1.CanarySpec{
			Provider:  provider,
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
			Service:   flaggerv1beta1.CanaryService{Port: 9898},
			Analysis:  analysis,
		},
	}
}

// meshChecks are the builtin Istio checks: success rate at least 99% and
// P99 latency at most 500ms, over 20 seconds.
func meshChecks() []flaggerv1beta1.CanaryMetric {
	return []flaggerv1beta1.CanaryMetric{
		{Name: "request-success-rate", Interval: "20s", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
		{Name: "request-duration", Interval: "20s", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
	}
}

// loadTest is a pre-rollout webhook that starts a background hey load
// test through the simulated mesh's front proxy, so that every step has
// traffic to measure.
func (s *scenario) loadTest(heyFlags string) flaggerv1beta1.CanaryWebhook {
	return flaggerv1beta1.CanaryWebhook{
		Name: "load-test", Type: flaggerv1beta1.PreRolloutHook, URL: s.loadTester + "/",
		Metadata: map[string]string{"cmd": "hey -z 30m -q 20 -c 2 " + heyFlags + s.sim.ProxyURL + "/"},
	}
}

// release patches the target's image and error rate.
func (s *scenario) release(tag string, errorRate float64) {
	s.t.Helper()
	s.releaseAnnotated(tag, map[string]string{errorRateAnnotation: strconv.FormatFloat(errorRate, 'f', -1, 64)})
}

// releaseAnnotated patches the target's image and sets the simulated
// mesh's annotations (errorRateAnnotation, latencyAnnotation) of its pod
// template.
func (s *scenario) releaseAnnotated(tag string, annotations map[string]string) {
	s.t.Helper()
	d := &appsv1.Deployment{}
	if err := s.get(app, d); err != nil {
		s.t.Fatal(err)
	}
	before := d.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = image + tag
	maps.Copy(d.Spec.Template.Annotations, annotations)
	if err := s.c.Patch(s.t.Context(), d, client.MergeFrom(before)); err != nil {
		s.t.Fatalf("releasing %s: %v", tag, err)
	}
	s.logf("released podinfo:%s with %v", tag, annotations)
}

// primaryImage returns the image of the primary Deployment.
func (s *scenario) primaryImage() string {
	s.t.Helper()
	d := &appsv1.Deployment{}
	if err := s.get(app+"-primary", d); err != nil {
		s.t.Fatalf("reading the primary: %v", err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// initialize creates the Deployment (and objs) and the Canary, and waits
// until the Canary is Initialized with the primary serving podinfo:6.0.0.
func (s *scenario) initialize(cd *flaggerv1beta1.Canary, objs ...client.Object) {
	s.t.Helper()
	s.create(append(append([]client.Object{}, objs...), podinfo(), cd)...)
	s.waitPhase(flaggerv1beta1.CanaryPhaseInitialized, 90*time.Second, nil)
	if got := s.primaryImage(); got != image+"6.0.0" {
		s.t.Fatalf("primary image after initialization = %s, want %s6.0.0", got, image)
	}
}

// weights are the primary's, the canary's and the baseline's
// (analysis.baseline) weights in a route.
type weights struct{ primary, canary, baseline int32 }

// vsWeights reads the weights of the VirtualService's last HTTP route, the
// one without match conditions.
func (s *scenario) vsWeights() (weights, error) {
	vs := &networkingv1.VirtualService{}
	if err := s.get(app, vs); err != nil {
		return weights{}, err
	}
	if len(vs.Spec.Http) == 0 {
		return weights{}, fmt.Errorf("VirtualService %s has no HTTP routes", app)
	}
	var w weights
	for _, r := range vs.Spec.Http[len(vs.Spec.Http)-1].Route {
		switch r.GetDestination().GetHost() {
		case app + "-primary":
			w.primary = r.Weight
		case app + "-canary":
			w.canary = r.Weight
		case app + "-baseline":
			w.baseline = r.Weight
		}
	}
	return w, nil
}

// seen records distinct values in the order they were first seen.
type seen[T comparable] []T

func (s *seen[T]) add(v T) {
	if !slices.Contains(*s, v) {
		*s = append(*s, v)
	}
}
