package canary

import (
	"math"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// Sluice's CRDs admit every spec Flagger's CRDs admit, unless it could
// never run under Flagger (api/v1beta1/flagger_strictness_test.go), so
// that one object does not fail a whole GitOps apply. Some of those specs
// Sluice cannot run either: SpecProblem finds them, and the Canary reports
// them on its Valid condition instead. The same values get an admission
// warning (kustomize/base/admission-warnings.yaml) with the same advice.
//
// A rule is one function in specRules, returning a problem with a message
// that names the field, says what is wrong and what to change.

// SpecProblem returns the first value of cd's spec that Sluice cannot run,
// as a problem.InvalidSpec, or nil. It reads nothing but cd. It reads the
// traffic provider from spec.provider; SpecProblemFor takes the provider
// in effect (spec.provider or the controller's -mesh-provider).
func SpecProblem(cd *flaggerv1beta1.Canary) *problem.Problem {
	return SpecProblemFor(cd, cd.Spec.Provider)
}

// SpecProblemFor is SpecProblem for a Canary routed by provider. Rules on
// traffic weights are skipped for the kubernetes provider, which cannot
// split traffic and runs every analysis as blue/green with its own number
// of iterations (as Flagger does); an empty provider is taken as one that
// splits. Rules on references a provider reads (ingressRef, routeRef,
// upstreamRef) apply only for that provider.
func SpecProblemFor(cd *flaggerv1beta1.Canary, provider string) *problem.Problem {
	if cd == nil || cd.Spec.Analysis == nil {
		return nil
	}
	for _, rule := range specRules {
		if p := rule(&cd.Spec, provider); p != nil {
			return p
		}
	}
	return nil
}

type specRule func(spec *flaggerv1beta1.CanarySpec, provider string) *problem.Problem

var specRules = []specRule{
	strategyProblem,
	maxWeightProblem,
	thresholdRangeProblem,
	readyThresholdProblem,
	mirrorWeightProblem,
	portProblem,
	referenceProblem,
	targetProblem,
	baselineProblem,
}

func invalid(format string, args ...any) *problem.Problem {
	return problem.New(problem.InvalidSpec, format, args...)
}

// splits reports whether the provider shifts traffic by weight, so that
// the weights of the spec are used.
func splits(provider string) bool {
	return provider != flaggerv1beta1.ProviderKubernetes
}

// strategyProblem finds a canary release whose weight could never grow and
// an A/B or blue/green analysis without a step. Flagger leaves such a
// Canary analysing forever without promoting it; Sluice's state machine
// would instead jump to the maximum weight at once.
func strategyProblem(spec *flaggerv1beta1.CanarySpec, provider string) *problem.Problem {
	a := spec.Analysis
	if !splits(provider) {
		return nil
	}
	switch {
	case a.Iterations != nil:
		if *a.Iterations < 1 {
			return invalid("spec.analysis.iterations: %d runs no analysis step, and Flagger never promotes such a Canary: set 1 or more", *a.Iterations)
		}
	case a.StepWeight != nil:
		switch w := *a.StepWeight; {
		case w < 1:
			return invalid("spec.analysis.stepWeight: %d never moves traffic to the canary, and Flagger never promotes such a Canary: set a step between 1 and 100", w)
		case w > math.MaxInt32-100:
			return invalid("spec.analysis.stepWeight: %d is too large to add to a weight: set a step between 1 and 100", w)
		}
	case len(a.StepWeights) > 0:
		if last := a.StepWeights[len(a.StepWeights)-1]; last < 1 {
			return invalid("spec.analysis.stepWeights: the last weight, %d, is where promotion starts, and a canary that takes no traffic cannot be analysed: end the list with a weight between 1 and 100", last)
		}
	default:
		// The CRD requires one of the three; an empty stepWeights list
		// passes that rule and decodes as none.
		return invalid("spec.analysis.stepWeights is empty: list the canary weights, such as [5, 10, 25, 50], or set stepWeight")
	}
	return nil
}

// maxWeightProblem finds a maximum weight that a canary release can never
// reach, or one that ends the analysis before the canary takes traffic.
func maxWeightProblem(spec *flaggerv1beta1.CanarySpec, provider string) *problem.Problem {
	a := spec.Analysis
	if a.MaxWeight == nil || a.Iterations != nil || !splits(provider) {
		return nil
	}
	switch w := *a.MaxWeight; {
	case w < 1:
		return invalid("spec.analysis.maxWeight: %d would end the analysis before the canary takes traffic: remove it for the default of 100 (Flagger reads 0 or less as unset) or set 1 to 100", w)
	case w > 100 && a.StepWeight != nil:
		return invalid("spec.analysis.maxWeight: %d is above 100, a weight the canary can never reach, so the release would never be promoted: set 100 or less", w)
	}
	return nil
}

// thresholdRangeProblem finds a metric whose range is empty: no value can
// pass it, so every analysis would fail.
func thresholdRangeProblem(spec *flaggerv1beta1.CanarySpec, _ string) *problem.Problem {
	for i, m := range spec.Analysis.Metrics {
		r := m.ThresholdRange
		if r != nil && r.Min != nil && r.Max != nil && *r.Min > *r.Max {
			return invalid("spec.analysis.metrics[%d].thresholdRange: min %g is above max %g, so this metric can never pass: swap them", i, *r.Min, *r.Max)
		}
	}
	return nil
}

// readyThresholdProblem finds a ready threshold above 100%: more replicas
// than exist would have to be available, so the workload never counts as
// ready (in Flagger as in Sluice).
func readyThresholdProblem(spec *flaggerv1beta1.CanarySpec, _ string) *problem.Problem {
	a := spec.Analysis
	for _, t := range []struct {
		field, workload string
		value           *int32
	}{
		{"primaryReadyThreshold", "primary", a.PrimaryReadyThreshold},
		{"canaryReadyThreshold", "canary", a.CanaryReadyThreshold},
	} {
		if t.value != nil && *t.value > 100 {
			return invalid("spec.analysis.%s: %d%% of the replicas can never be available, so the %s would never count as ready: set 100 or less", t.field, *t.value, t.workload)
		}
	}
	return nil
}

// mirrorWeightProblem finds a mirror percentage above 100, which the
// routing APIs refuse (Gateway API's schema, Istio's validation).
func mirrorWeightProblem(spec *flaggerv1beta1.CanarySpec, _ string) *problem.Problem {
	a := spec.Analysis
	if a.Mirror && a.MirrorWeight > 100 {
		return invalid("spec.analysis.mirrorWeight: %d%% is more than all requests, and the routing APIs refuse it: set 100 or less, or remove it to mirror every request", a.MirrorWeight)
	}
	return nil
}

// portProblem finds a Service port out of range for a Deployment or
// DaemonSet target, whose Services the API server would refuse. A Service
// target (Knative) gets no generated Services. Zero reads as unset.
func portProblem(spec *flaggerv1beta1.CanarySpec, _ string) *problem.Problem {
	if spec.TargetRef.Kind == "Service" {
		return nil
	}
	if p := spec.Service.Port; p < 0 || p > 65535 {
		return invalid("spec.service.port: %d is not a port number, and the API server refuses the Services Sluice writes with it: set one from 1 to 65535", p)
	}
	return nil
}

// referenceProblem finds a reference with an empty name that Sluice would
// have to read.
func referenceProblem(spec *flaggerv1beta1.CanarySpec, provider string) *problem.Problem {
	if r := spec.AutoscalerRef; r != nil && r.Name == "" {
		return invalid("spec.autoscalerRef.name is empty: name the target's %s, or remove autoscalerRef", r.Kind)
	}
	if r := spec.IngressRef; r != nil && r.Name == "" &&
		(provider == flaggerv1beta1.ProviderNGINX || provider == flaggerv1beta1.ProviderSkipper) {
		return invalid("spec.ingressRef.name is empty: the %s provider routes through the Ingress it names: name the target's Ingress", provider)
	}
	if r := spec.RouteRef; r != nil && r.Name == "" && provider == flaggerv1beta1.ProviderAPISIX {
		return invalid("spec.routeRef.name is empty: the apisix provider routes through the ApisixRoute it names: name the target's ApisixRoute")
	}
	if r := spec.UpstreamRef; r != nil && r.Name == "" && provider == flaggerv1beta1.ProviderGloo {
		return invalid("spec.upstreamRef.name is empty: name the Gloo Upstream to copy, or remove upstreamRef")
	}
	return nil
}

// targetProblem finds a target the provider or the autoscaler cannot go
// with, as Flagger does (its messages come first): a Knative Service is
// routed by provider knative only and scaled by Knative only, and provider
// knative routes nothing but a Knative Service. A Kubernetes Service
// target has no pods for an autoscaler to scale.
func targetProblem(spec *flaggerv1beta1.CanarySpec, provider string) *problem.Problem {
	ref := spec.TargetRef
	knative := ref.IsKnativeService()
	switch {
	case knative && provider != flaggerv1beta1.ProviderKnative:
		return invalid("can't use %s provider with Knative Service as target: a Knative Service's traffic is split by Knative: set spec.provider to knative", provider)
	case !knative && provider == flaggerv1beta1.ProviderKnative:
		return invalid("can't use %s/%s as target if provider is set to knative: point spec.targetRef at a Knative Service (apiVersion %s, kind Service) or choose another provider",
			ref.APIVersion, ref.Kind, flaggerv1beta1.KnativeServiceAPIVersion)
	case knative && spec.AutoscalerRef != nil:
		return invalid("can't use autoscaler with Knative Service: Knative scales its revisions itself: remove spec.autoscalerRef")
	case ref.Kind == "Service" && spec.AutoscalerRef != nil:
		return invalid("spec.autoscalerRef: a Service target has no pods for the %s %s to scale: remove spec.autoscalerRef, or point spec.targetRef at the Deployment",
			spec.AutoscalerRef.Kind, spec.AutoscalerRef.Name)
	}
	return nil
}

// maxBaselineWeight is the highest canary weight with a baseline: the
// baseline takes as much traffic as the canary, out of the primary's.
const maxBaselineWeight = 50

// baselineProblem finds a baseline that cannot run: one beside a workload
// that has no replica count, or beside an analysis that does not split
// the traffic by weight, or one that, taking as much traffic as the
// canary, would leave the primary less than nothing. Whether the provider
// can route to a baseline is the router's to say.
func baselineProblem(spec *flaggerv1beta1.CanarySpec, provider string) *problem.Problem {
	a := spec.Analysis
	if !a.Baseline {
		return nil
	}
	if k := spec.TargetRef.Kind; k != "Deployment" {
		return invalid("spec.analysis.baseline: a baseline is a Deployment beside the canary, and the target is a %s, which runs one pod per node: remove analysis.baseline", k)
	}
	if !splits(provider) {
		return nil // the router refuses it: provider kubernetes cannot split traffic
	}
	if a.Iterations != nil {
		return invalid("spec.analysis.baseline: the baseline gets the same share of the traffic as the canary, which needs a canary release with stepWeight or stepWeights; A/B testing and blue/green (iterations) give the canary all of its traffic at once: remove analysis.baseline or use stepWeight")
	}
	maxWeight, field := int32(100), "maxWeight (default 100)"
	if n := len(a.StepWeights); n > 0 {
		maxWeight, field = min(100, a.StepWeights[n-1]), "the last entry of stepWeights"
	}
	if a.MaxWeight != nil && *a.MaxWeight < maxWeight {
		maxWeight, field = *a.MaxWeight, "maxWeight"
	}
	if maxWeight > maxBaselineWeight {
		return invalid("spec.analysis.baseline: the baseline takes as much traffic as the canary, so the canary can have at most %d%%, but %s is %d: set maxWeight to %d or less",
			maxBaselineWeight, field, maxWeight, maxBaselineWeight)
	}
	return nil
}
