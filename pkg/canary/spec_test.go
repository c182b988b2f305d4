package canary_test

import (
	"math"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/problem"
)

// specCanary is a valid canary release: stepWeight 10 up to 50, one
// metric, the Istio provider.
func specCanary(mutate ...func(*flaggerv1beta1.Canary)) *flaggerv1beta1.Canary {
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{
		Provider:  flaggerv1beta1.ProviderIstio,
		TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
		Service:   flaggerv1beta1.CanaryService{Port: 9898},
		Analysis: &flaggerv1beta1.CanaryAnalysis{
			Interval: "30s", Threshold: 5, StepWeight: ptr.To[int32](10), MaxWeight: ptr.To[int32](50),
			Metrics: []flaggerv1beta1.CanaryMetric{{Name: "request-success-rate", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}}},
		},
	}}
	for _, m := range mutate {
		m(cd)
	}
	return cd
}

// steps replaces stepWeight and maxWeight with a list of weights.
func steps(w ...int32) func(*flaggerv1beta1.Canary) {
	return func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight, cd.Spec.Analysis.StepWeights = nil, nil, w
	}
}

// baseline asks for a baseline beside the canary.
func baseline(cd *flaggerv1beta1.Canary) { cd.Spec.Analysis.Baseline = true }

// iterations replaces stepWeight and maxWeight with a number of iterations.
func iterations(n int32) func(*flaggerv1beta1.Canary) {
	return func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight, cd.Spec.Analysis.Iterations = nil, nil, ptr.To(n)
	}
}

func TestSpecProblem_ReportsWhatSluiceCannotRun(t *testing.T) {
	type mutation = func(*flaggerv1beta1.Canary)
	a := func(f func(*flaggerv1beta1.CanaryAnalysis)) mutation {
		return func(cd *flaggerv1beta1.Canary) { f(cd.Spec.Analysis) }
	}
	provider := func(p string) mutation { return func(cd *flaggerv1beta1.Canary) { cd.Spec.Provider = p } }
	knative := func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider, cd.Spec.TargetRef.APIVersion, cd.Spec.TargetRef.Kind = "knative", "serving.knative.dev/v1", "Service"
	}
	service := func(cd *flaggerv1beta1.Canary) {
		cd.Spec.TargetRef.APIVersion, cd.Spec.TargetRef.Kind = "v1", "Service"
	}
	hpaRef := func(cd *flaggerv1beta1.Canary) {
		cd.Spec.AutoscalerRef = &flaggerv1beta1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "podinfo"}
	}
	tests := []struct {
		name   string
		mutate []mutation
		want   string // the whole message, or a part of it; empty for no problem
	}{
		{name: "a valid canary release"},
		{name: "no analysis", mutate: []mutation{func(cd *flaggerv1beta1.Canary) { cd.Spec.Analysis = nil }}},

		// The strategy.
		{name: "iterations of 5", mutate: []mutation{iterations(5)}},
		{name: "zero iterations", mutate: []mutation{iterations(0)},
			want: "spec.analysis.iterations: 0 runs no analysis step, and Flagger never promotes such a Canary: set 1 or more"},
		{name: "negative iterations", mutate: []mutation{iterations(-1)}, want: "spec.analysis.iterations: -1 runs no analysis step"},
		{name: "zero iterations on the kubernetes provider, which runs its own", mutate: []mutation{iterations(0), provider("kubernetes")}},
		{name: "stepWeight of 0", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.StepWeight = ptr.To[int32](0) })},
			want: "spec.analysis.stepWeight: 0 never moves traffic to the canary, and Flagger never promotes such a Canary: set a step between 1 and 100"},
		{name: "negative stepWeight", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.StepWeight = ptr.To[int32](-10) })},
			want: "spec.analysis.stepWeight: -10 never moves traffic"},
		{name: "negative stepWeight on the kubernetes provider", mutate: []mutation{provider("kubernetes"),
			a(func(a *flaggerv1beta1.CanaryAnalysis) { a.StepWeight = ptr.To[int32](-10) })}},
		{name: "stepWeight of 150 goes straight to maxWeight", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.StepWeight = ptr.To[int32](150) })}},
		{name: "stepWeight above maxWeight is capped", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.StepWeight = ptr.To[int32](60) })}},
		{name: "stepWeight that overflows a weight", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.StepWeight = ptr.To[int32](math.MaxInt32) })},
			want: "spec.analysis.stepWeight: 2147483647 is too large to add to a weight"},
		{name: "stepWeights out of order", mutate: []mutation{steps(50, 10)}},
		{name: "stepWeights above 100", mutate: []mutation{steps(10, 150)}},
		{name: "stepWeights with a negative entry", mutate: []mutation{steps(-5, 50)}},
		{name: "stepWeights ending at 0", mutate: []mutation{steps(10, 0)},
			want: "spec.analysis.stepWeights: the last weight, 0, is where promotion starts, and a canary that takes no traffic cannot be analysed: end the list with a weight between 1 and 100"},
		{name: "empty stepWeights", mutate: []mutation{steps()},
			want: "spec.analysis.stepWeights is empty: list the canary weights, such as [5, 10, 25, 50], or set stepWeight"},

		// maxWeight.
		{name: "maxWeight of 0", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.MaxWeight = ptr.To[int32](0) })},
			want: "spec.analysis.maxWeight: 0 would end the analysis before the canary takes traffic: remove it for the default of 100 (Flagger reads 0 or less as unset) or set 1 to 100"},
		{name: "negative maxWeight with stepWeights", mutate: []mutation{steps(10, 20), a(func(a *flaggerv1beta1.CanaryAnalysis) { a.MaxWeight = ptr.To[int32](-5) })},
			want: "spec.analysis.maxWeight: -5 would end the analysis"},
		{name: "maxWeight of 150 with stepWeight", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.MaxWeight = ptr.To[int32](150) })},
			want: "spec.analysis.maxWeight: 150 is above 100, a weight the canary can never reach, so the release would never be promoted: set 100 or less"},
		{name: "maxWeight of 150 with stepWeights, which end at their last entry", mutate: []mutation{steps(10, 20), a(func(a *flaggerv1beta1.CanaryAnalysis) { a.MaxWeight = ptr.To[int32](150) })}},
		{name: "maxWeight of 0 with iterations, which ignore it", mutate: []mutation{iterations(3), a(func(a *flaggerv1beta1.CanaryAnalysis) { a.MaxWeight = ptr.To[int32](0) })}},

		// Metrics.
		{name: "threshold range upside down", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) {
			a.Metrics = append(a.Metrics, flaggerv1beta1.CanaryMetric{Name: "latency", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(200.0), Max: ptr.To(100.0)}})
		})}, want: "spec.analysis.metrics[1].thresholdRange: min 200 is above max 100, so this metric can never pass: swap them"},
		{name: "fractional threshold range upside down", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) {
			a.Metrics[0].ThresholdRange.Max = ptr.To(98.5)
		})}, want: "spec.analysis.metrics[0].thresholdRange: min 99 is above max 98.5"},
		{name: "a range of one value", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.Metrics[0].ThresholdRange.Max = ptr.To(99.0) })}},

		// Readiness and mirroring.
		{name: "primaryReadyThreshold of 150", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.PrimaryReadyThreshold = ptr.To[int32](150) })},
			want: "spec.analysis.primaryReadyThreshold: 150% of the replicas can never be available, so the primary would never count as ready: set 100 or less"},
		{name: "canaryReadyThreshold of 101", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.CanaryReadyThreshold = ptr.To[int32](101) })},
			want: "spec.analysis.canaryReadyThreshold: 101% of the replicas can never be available, so the canary would never count as ready"},
		{name: "negative ready threshold counts as 0", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.PrimaryReadyThreshold = ptr.To[int32](-1) })}},
		{name: "mirrorWeight of 150", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.Mirror, a.MirrorWeight = true, 150 })},
			want: "spec.analysis.mirrorWeight: 150% is more than all requests, and the routing APIs refuse it: set 100 or less, or remove it to mirror every request"},
		{name: "mirrorWeight of 150 without mirror", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.MirrorWeight = 150 })}},
		{name: "negative mirrorWeight mirrors every request", mutate: []mutation{a(func(a *flaggerv1beta1.CanaryAnalysis) { a.Mirror, a.MirrorWeight = true, -1 })}},

		// The Service.
		{name: "port out of range", mutate: []mutation{func(cd *flaggerv1beta1.Canary) { cd.Spec.Service.Port = 70000 }},
			want: "spec.service.port: 70000 is not a port number, and the API server refuses the Services Sluice writes with it: set one from 1 to 65535"},
		{name: "negative port", mutate: []mutation{func(cd *flaggerv1beta1.Canary) { cd.Spec.Service.Port = -1 }}, want: "spec.service.port: -1 is not a port number"},
		{name: "port out of range for a Knative Service", mutate: []mutation{knative, func(cd *flaggerv1beta1.Canary) { cd.Spec.Service.Port = 70000 }}},
		{name: "port out of range for a Kubernetes Service", mutate: []mutation{service, func(cd *flaggerv1beta1.Canary) { cd.Spec.Service.Port = 70000 }}},

		// The target, as Flagger checks it.
		{name: "a Knative Service on provider knative", mutate: []mutation{knative}},
		{name: "a Knative Service on another provider", mutate: []mutation{knative, provider("istio")},
			want: "can't use istio provider with Knative Service as target: a Knative Service's traffic is split by Knative: set spec.provider to knative"},
		{name: "provider knative with a Deployment", mutate: []mutation{provider("knative")},
			want: "can't use apps/v1/Deployment as target if provider is set to knative: point spec.targetRef at a Knative Service (apiVersion serving.knative.dev/v1, kind Service) or choose another provider"},
		{name: "provider knative with a Kubernetes Service", mutate: []mutation{service, provider("knative")},
			want: "can't use v1/Service as target if provider is set to knative"},
		{name: "a Knative Service with an autoscaler", mutate: []mutation{knative, hpaRef},
			want: "can't use autoscaler with Knative Service: Knative scales its revisions itself: remove spec.autoscalerRef"},
		{name: "a Kubernetes Service", mutate: []mutation{service}},
		{name: "a Kubernetes Service on provider kubernetes", mutate: []mutation{service, provider("kubernetes")}},
		{name: "a Kubernetes Service with an autoscaler", mutate: []mutation{service, hpaRef},
			want: "spec.autoscalerRef: a Service target has no pods for the HorizontalPodAutoscaler podinfo to scale: remove spec.autoscalerRef, or point spec.targetRef at the Deployment"},
		{name: "a Deployment with a ScaledObject", mutate: []mutation{func(cd *flaggerv1beta1.Canary) {
			cd.Spec.AutoscalerRef = &flaggerv1beta1.AutoscalerReference{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: "podinfo"}
		}}},

		// References.
		{name: "autoscalerRef without a name", mutate: []mutation{func(cd *flaggerv1beta1.Canary) {
			cd.Spec.AutoscalerRef = &flaggerv1beta1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"}
		}}, want: "spec.autoscalerRef.name is empty: name the target's HorizontalPodAutoscaler, or remove autoscalerRef"},
		{name: "ingressRef without a name on nginx", mutate: []mutation{provider("nginx"), func(cd *flaggerv1beta1.Canary) {
			cd.Spec.IngressRef = &flaggerv1beta1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"}
		}}, want: "spec.ingressRef.name is empty: the nginx provider routes through the Ingress it names"},
		{name: "ingressRef without a name on istio, which ignores it", mutate: []mutation{func(cd *flaggerv1beta1.Canary) {
			cd.Spec.IngressRef = &flaggerv1beta1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"}
		}}},
		{name: "routeRef without a name on apisix", mutate: []mutation{provider("apisix"), func(cd *flaggerv1beta1.Canary) {
			cd.Spec.RouteRef = &flaggerv1beta1.RouteReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute"}
		}}, want: "spec.routeRef.name is empty"},
		{name: "upstreamRef without a name on gloo", mutate: []mutation{provider("gloo"), func(cd *flaggerv1beta1.Canary) {
			cd.Spec.UpstreamRef = &flaggerv1beta1.UpstreamReference{APIVersion: "gloo.solo.io/v1", Kind: "Upstream"}
		}}, want: "spec.upstreamRef.name is empty"},

		// The baseline.
		{name: "a baseline beside a canary release up to 50%", mutate: []mutation{baseline}},
		{name: "a baseline with stepWeights up to 50%", mutate: []mutation{baseline, steps(10, 25, 50)}},
		{name: "a baseline with stepWeights capped by maxWeight", mutate: []mutation{baseline, steps(10, 80),
			a(func(a *flaggerv1beta1.CanaryAnalysis) { a.MaxWeight = ptr.To[int32](40) })}},
		{name: "a baseline up to the default maxWeight", mutate: []mutation{baseline, a(func(a *flaggerv1beta1.CanaryAnalysis) { a.MaxWeight = nil })},
			want: "spec.analysis.baseline: the baseline takes as much traffic as the canary, so the canary can have at most 50%, but maxWeight (default 100) is 100: set maxWeight to 50 or less"},
		{name: "a baseline up to 60%", mutate: []mutation{baseline, a(func(a *flaggerv1beta1.CanaryAnalysis) { a.MaxWeight = ptr.To[int32](60) })},
			want: "spec.analysis.baseline: the baseline takes as much traffic as the canary, so the canary can have at most 50%, but maxWeight is 60"},
		{name: "a baseline with stepWeights past 50%", mutate: []mutation{baseline, steps(10, 75)},
			want: "spec.analysis.baseline: the baseline takes as much traffic as the canary, so the canary can have at most 50%, but the last entry of stepWeights is 75"},
		{name: "a baseline beside a blue/green analysis", mutate: []mutation{baseline, iterations(5)},
			want: "spec.analysis.baseline: the baseline gets the same share of the traffic as the canary, which needs a canary release with stepWeight or stepWeights"},
		{name: "a baseline beside an A/B test", mutate: []mutation{baseline, iterations(5), a(func(a *flaggerv1beta1.CanaryAnalysis) {
			a.Match = []flaggerv1beta1.HTTPMatchConditions{{Headers: map[string]flaggerv1beta1.HeaderMatch{"x-canary": {Exact: ptr.To("1")}}}}
		})}, want: "spec.analysis.baseline: the baseline gets the same share"},
		{name: "a baseline beside a DaemonSet", mutate: []mutation{baseline, func(cd *flaggerv1beta1.Canary) { cd.Spec.TargetRef.Kind = "DaemonSet" }},
			want: "spec.analysis.baseline: a baseline is a Deployment beside the canary, and the target is a DaemonSet, which runs one pod per node: remove analysis.baseline"},
		{name: "a baseline on the kubernetes provider is the router's to refuse", mutate: []mutation{baseline, provider("kubernetes"), iterations(5)}},

		// Order.
		{name: "the first problem wins", mutate: []mutation{
			a(func(a *flaggerv1beta1.CanaryAnalysis) { a.StepWeight = ptr.To[int32](0) }),
			func(cd *flaggerv1beta1.Canary) { cd.Spec.Service.Port = 70000 },
		}, want: "spec.analysis.stepWeight: 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cd := specCanary(tt.mutate...)
			p := canary.SpecProblem(cd)
			if tt.want == "" {
				if p != nil {
					t.Fatalf("SpecProblem = %q, want none", p.Message)
				}
				return
			}
			if p == nil {
				t.Fatalf("SpecProblem = nil, want %q", tt.want)
			}
			if p.Reason != problem.InvalidSpec {
				t.Errorf("reason = %s, want %s", p.Reason, problem.InvalidSpec)
			}
			if !strings.HasPrefix(p.Message, tt.want) {
				t.Errorf("message = %q\nwant it to start with %q", p.Message, tt.want)
			}
		})
	}
}

// TestSpecProblemFor_UsesTheProviderInEffect checks that the provider the
// controller resolved, not only spec.provider, decides the weight rules.
func TestSpecProblemFor_UsesTheProviderInEffect(t *testing.T) {
	cd := specCanary(iterations(0), func(cd *flaggerv1beta1.Canary) { cd.Spec.Provider = "" })
	if p := canary.SpecProblemFor(cd, flaggerv1beta1.ProviderKubernetes); p != nil {
		t.Errorf("on the kubernetes provider: %q, want none", p.Message)
	}
	if p := canary.SpecProblemFor(cd, flaggerv1beta1.ProviderLinkerd); p == nil || !strings.Contains(p.Message, "iterations") {
		t.Errorf("on linkerd: %v, want the iterations problem", p)
	}

	// A Knative Service without spec.provider goes with -mesh-provider
	// knative (Flagger would want spec.provider), and not with another.
	kn := specCanary(func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider, cd.Spec.TargetRef.APIVersion, cd.Spec.TargetRef.Kind = "", "serving.knative.dev/v1", "Service"
	})
	if p := canary.SpecProblemFor(kn, flaggerv1beta1.ProviderKnative); p != nil {
		t.Errorf("a Knative Service with -mesh-provider knative: %q, want none", p.Message)
	}
	if p := canary.SpecProblemFor(kn, flaggerv1beta1.ProviderIstio); p == nil || !strings.HasPrefix(p.Message, "can't use istio provider with Knative Service as target") {
		t.Errorf("a Knative Service with -mesh-provider istio: %v, want Flagger's refusal", p)
	}
}
