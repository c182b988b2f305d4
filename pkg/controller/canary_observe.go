package controller

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
	"github.com/sluicedev/sluice/pkg/router"
)

// scope is what one reconcile works with: the Canary, the state machine's
// input, and the adapters that act on the cluster.
type scope struct {
	cd       *flaggerv1beta1.Canary
	in       statemachine.Input
	workload canary.Workload
	router   router.Interface
	target   router.Target
}

// observe reads everything the decision needs. Bad input becomes
// Obs.Invalid; any other error is returned, so that a transient API error
// is retried with backoff and never read as a change.
func (r *CanaryReconciler) observe(ctx context.Context, cd *flaggerv1beta1.Canary) (*scope, error) {
	provider := cd.Spec.Provider
	if provider == "" {
		provider = r.MeshProvider
	}
	sc := &scope{cd: cd, in: statemachine.Input{
		Spec: cd.Spec, Status: cd.Status, Name: cd.Name, Namespace: cd.Namespace, Generation: cd.Generation, Now: r.now(),
		Config: statemachine.Config{MinInterval: r.MinInterval, SplitsTraffic: provider != flaggerv1beta1.ProviderKubernetes},
	}}
	sc.in.Obs.Deleting = !cd.DeletionTimestamp.IsZero() && controllerutil.ContainsFinalizer(cd, Finalizer)

	if p := r.checkReferences(ctx, cd); p != nil {
		sc.in.Obs.Invalid = p
		return sc, nil
	}
	if sc.router, sc.in.Obs.Invalid = r.routerFor(provider); sc.in.Obs.Invalid != nil {
		return sc, nil
	}
	if a := cd.Spec.Analysis; a != nil && a.SessionAffinity != nil && !router.SupportsSessionAffinity(sc.router) {
		sc.in.Obs.Invalid = &statemachine.Problem{Reason: "UnsupportedRouting", Message: fmt.Sprintf(
			"spec.analysis.sessionAffinity: provider %s cannot pin users to a version with cookies (the istio and gatewayapi providers can); "+
				"remove sessionAffinity or use one of those providers", provider)}
		return sc, nil
	}
	wl, err := canary.New(cd, canary.Deps{Client: r.Client, Reader: r.APIReader, Config: r.Workloads})
	if err != nil {
		return sc, r.invalidOr(sc, err)
	}
	sc.workload = wl
	st, err := wl.Observe(ctx, cd)
	if err != nil {
		return sc, r.invalidOr(sc, err)
	}
	if !sc.in.Obs.Deleting && r.needsMetricCheck(cd, st) {
		if sc.in.Obs.Invalid = r.metricProblem(ctx, cd); sc.in.Obs.Invalid != nil {
			return sc, nil
		}
	}
	sc.target = routerTarget(st)
	obs := &sc.in.Obs
	obs.Revision, obs.TrackedConfigs, obs.AutoscalerDesired = st.Revision, st.TrackedConfigs, st.AutoscalerDesired
	obs.Target, obs.Primary = workload(st.Target), workload(st.Primary)
	obs.Admitted, obs.AdmissionMessage, err = r.admitted(ctx, cd)
	if err != nil {
		return nil, err
	}
	return sc, nil
}

// routerFor returns the provider's router, or the problem of an unknown one.
func (r *CanaryReconciler) routerFor(provider string) (router.Interface, *statemachine.Problem) {
	rt, err := router.New(provider, router.Deps{Client: r.Client, APIReader: r.APIReader, IngressAnnotationsPrefix: r.IngressAnnotationsPrefix, IngressClass: r.IngressClass})
	if err != nil {
		return nil, &statemachine.Problem{Reason: "UnsupportedProvider", Message: err.Error()}
	}
	return rt, nil
}

// invalidOr records bad input in the scope, or returns a transient error.
func (r *CanaryReconciler) invalidOr(sc *scope, err error) error {
	if ie, ok := canary.AsInvalid(err); ok {
		sc.in.Obs.Invalid = &statemachine.Problem{Reason: ie.Reason, Message: ie.Message}
		return nil
	}
	return fmt.Errorf("observing canary %s/%s: %w", sc.cd.Namespace, sc.cd.Name, err)
}

func workload(w canary.WorkloadState) statemachine.Workload {
	return statemachine.Workload{Exists: w.Exists, Replicas: w.Replicas, Ready: w.Ready, Stalled: w.Stalled, Message: w.Message}
}

// checkReferences finds references Sluice refuses: another Canary already
// managing the same target, and, with -no-cross-namespace-refs, templates
// or alert providers in other namespaces.
func (r *CanaryReconciler) checkReferences(ctx context.Context, cd *flaggerv1beta1.Canary) *statemachine.Problem {
	if r.NoCrossNamespaceRefs && cd.Spec.Analysis != nil {
		for _, m := range cd.Spec.Analysis.Metrics {
			if m.TemplateRef != nil && m.TemplateRef.Namespace != "" && m.TemplateRef.Namespace != cd.Namespace {
				return &statemachine.Problem{Reason: "CrossNamespaceReference", Message: fmt.Sprintf(
					"metric %s refers to MetricTemplate %s/%s in another namespace, which -no-cross-namespace-refs forbids: move the template to %s",
					m.Name, m.TemplateRef.Namespace, m.TemplateRef.Name, cd.Namespace)}
			}
		}
		for _, a := range cd.Spec.Analysis.Alerts {
			if a.ProviderRef.Namespace != "" && a.ProviderRef.Namespace != cd.Namespace {
				return &statemachine.Problem{Reason: "CrossNamespaceReference", Message: fmt.Sprintf(
					"alert %s refers to AlertProvider %s/%s in another namespace, which -no-cross-namespace-refs forbids: move the provider to %s",
					a.Name, a.ProviderRef.Namespace, a.ProviderRef.Name, cd.Namespace)}
			}
		}
	}
	var list flaggerv1beta1.CanaryList
	if err := r.List(ctx, &list, client.InNamespace(cd.Namespace), client.MatchingFields{targetIndex: targetKey(cd)}); err != nil {
		// The index is only missing in tests that skip SetupWithManager;
		// a duplicate check is not worth failing the reconcile for.
		return nil
	}
	owners := list.Items
	sort.Slice(owners, func(i, j int) bool {
		ti, tj := owners[i].CreationTimestamp, owners[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return owners[i].Name < owners[j].Name
	})
	if len(owners) > 1 && owners[0].Name != cd.Name {
		return &statemachine.Problem{Reason: "DuplicateTarget", Message: fmt.Sprintf(
			"%s %s is already managed by Canary %s: a workload can have one Canary; delete this one or point it at another target",
			cd.Spec.TargetRef.Kind, cd.Spec.TargetRef.Name, owners[0].Name)}
	}
	return nil
}

// routerTarget tells routers how to select the workload's pods.
func routerTarget(st *canary.State) router.Target {
	return router.Target{
		SelectorLabel: st.SelectorLabel, SelectorValue: st.SelectorValue,
		Containers: router.PodContainers(&corev1.PodSpec{Containers: st.Containers}),
	}
}

// needsMetricCheck reports whether every metric must be resolved and its
// provider asked before going on: at initialization, after a spec change,
// before an analysis starts, and while the last check failed.
func (r *CanaryReconciler) needsMetricCheck(cd *flaggerv1beta1.Canary, st *canary.State) bool {
	if r.Analyzer == nil {
		return false
	}
	s := cd.Status
	for _, c := range s.Conditions {
		if c.Type == flaggerv1beta1.ValidType && c.Reason == "MetricUnavailable" {
			return true
		}
	}
	switch s.Phase {
	case "", flaggerv1beta1.CanaryPhaseInitializing:
		return true
	case flaggerv1beta1.CanaryPhaseInitialized, flaggerv1beta1.CanaryPhaseSucceeded,
		flaggerv1beta1.CanaryPhaseFailed, flaggerv1beta1.CanaryPhaseWaiting:
		if st.Revision != s.LastAppliedSpec && st.Revision != s.LastPromotedSpec {
			return true
		}
	}
	return s.ObservedGeneration != cd.Generation
}

// metricProblem reports a metric that cannot be evaluated, as a problem
// retried every analysis interval.
func (r *CanaryReconciler) metricProblem(ctx context.Context, cd *flaggerv1beta1.Canary) *statemachine.Problem {
	if err := r.Analyzer.Check(ctx, cd); err != nil {
		return &statemachine.Problem{Reason: "MetricUnavailable", Message: err.Error(), RetryAfter: planInterval(cd, r.MinInterval)}
	}
	return nil
}

// planInterval is the Canary's analysis interval, for retries.
func planInterval(cd *flaggerv1beta1.Canary, minimum time.Duration) time.Duration {
	d := time.Minute
	if cd.Spec.Analysis != nil {
		if v, err := time.ParseDuration(cd.Spec.Analysis.Interval); err == nil && v > 0 {
			d = v
		}
	}
	return max(d, minimum)
}
