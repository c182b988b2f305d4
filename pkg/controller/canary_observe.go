package controller

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/router"
	"github.com/sluicedev/sluice/pkg/webhook"
)

// scope is what one reconcile works with: the Canary, the state machine's
// input (the snapshot observe took), and the adapters that act on the
// cluster. The actions use the adapters observe built and never decide
// again what observe already knew.
type scope struct {
	cd       *flaggerv1beta1.Canary
	in       statemachine.Input
	workload canary.Workload
	router   router.Interface
	// target tells the router how to select the workload's pods; routable
	// is false when it is unknown.
	target   router.Target
	routable bool
}

func (sc *scope) key() types.NamespacedName { return client.ObjectKeyFromObject(sc.cd) }

// observe reads everything the decision needs, into one snapshot. Bad input
// becomes Obs.Invalid (the first problem found), and what can still be
// built is built, so that a release in flight can be rolled back; any
// other error is returned, so that a transient API error is retried with
// backoff and never read as a change.
func (r *CanaryReconciler) observe(ctx context.Context, cd *flaggerv1beta1.Canary) (*scope, error) {
	provider := cd.Spec.Provider
	if provider == "" {
		provider = r.MeshProvider
	}
	sc := &scope{cd: cd, in: statemachine.Input{
		Spec: cd.Spec, Status: cd.Status, Name: cd.Name, Namespace: cd.Namespace, Generation: cd.Generation, Now: r.now(),
		Config: statemachine.Config{MinInterval: r.MinInterval, SplitsTraffic: provider != flaggerv1beta1.ProviderKubernetes},
	}}
	obs := &sc.in.Obs
	obs.Deleting = !cd.DeletionTimestamp.IsZero() && controllerutil.ContainsFinalizer(cd, Finalizer)
	report := func(p *problem.Problem) {
		if obs.Invalid == nil {
			obs.Invalid = p
		}
	}

	report(canary.SpecProblemFor(cd, provider))
	report(r.checkReferences(ctx, cd))
	rt, p := r.routerOrLast(sc.key(), provider)
	report(p)
	sc.router = rt
	report(unsupportedRouting(cd, rt, provider))
	wl, err := canary.New(cd, canary.Deps{Client: r.Client, Reader: r.APIReader, Config: r.Workloads, Configs: &r.configs})
	if err != nil {
		return sc, r.invalidOr(sc, err)
	}
	sc.workload = wl
	st, err := wl.Observe(ctx, cd)
	if p, ok := problem.As(err); ok {
		report(p)
	} else if err != nil {
		return nil, fmt.Errorf("observing canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	if st != nil {
		sc.target = routerTarget(st)
		sc.routable = sc.router != nil
		obs.Routable = sc.routable
		obs.Revision, obs.TrackedConfigs, obs.AutoscalerDesired = st.Revision, st.TrackedConfigs, st.AutoscalerDesired
		obs.Target, obs.Primary, obs.Baseline = workload(st.Target), workload(st.Primary), workload(st.Baseline)
		obs.OwnServices = st.OwnServices
	}
	if obs.Invalid != nil || st == nil {
		return sc, nil //nolint:nilerr // obs.Invalid is bad input recorded for the decision, not an error of this read
	}
	if err := r.checkServices(ctx, cd, st); err != nil {
		if p, ok := problem.As(err); ok {
			report(p)
			return sc, nil
		}
		return nil, err
	}
	if !obs.Deleting && r.needsMetricCheck(cd, st) {
		if report(r.metricProblem(ctx, cd)); obs.Invalid != nil {
			return sc, nil //nolint:nilerr // as above: a problem to report, not a failed read
		}
	}
	r.providers.Store(sc.key(), provider)
	if routes, err := sc.router.GetRoutes(ctx, cd, sc.target); err == nil {
		obs.Routes = &statemachine.Routes{Primary: routes.Primary, Canary: routes.Canary, Baseline: routes.Baseline, Mirrored: routes.Mirrored}
	}
	if err := r.observeRequest(ctx, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// observeRequest reads the pending request and, when the Canary would
// start an analysis, whether it gets one of the slots.
func (r *CanaryReconciler) observeRequest(ctx context.Context, sc *scope) error {
	sc.in.Request = requestOf(sc.cd)
	if !idleWithNewRevision(sc.in) && (sc.in.Request == nil || sc.in.Request.Kind != statemachine.RequestRetry) {
		return nil
	}
	var err error
	sc.in.Obs.Admitted, sc.in.Obs.AdmissionMessage, err = r.admitted(ctx, sc.cd)
	return err
}

// unsupportedRouting finds analysis settings that the provider's router
// rt cannot carry out, or returns nil (also when there is no router).
func unsupportedRouting(cd *flaggerv1beta1.Canary, rt router.Interface, provider string) *problem.Problem {
	a := cd.Spec.Analysis
	if a == nil || rt == nil {
		return nil
	}
	if a.SessionAffinity != nil && !router.SupportsSessionAffinity(rt) {
		return problem.New(problem.UnsupportedRouting,
			"spec.analysis.sessionAffinity: provider %s cannot pin users to a version with cookies (the istio and gatewayapi providers can); "+
				"remove sessionAffinity or use one of those providers", provider)
	}
	if a.Baseline && !router.SupportsBaseline(rt) {
		return problem.New(problem.UnsupportedRouting,
			"spec.analysis.baseline: provider %s cannot send a share of the traffic to a baseline (the istio and gatewayapi providers can); "+
				"remove analysis.baseline or use one of those providers", provider)
	}
	return nil
}

// requestOf reads the request pending in the Canary's annotations, if any.
func requestOf(cd *flaggerv1beta1.Canary) *statemachine.Request {
	a := cd.Annotations
	if a[flaggerv1beta1.RequestIDAnnotation] == "" {
		return nil
	}
	return &statemachine.Request{Kind: a[flaggerv1beta1.RequestAnnotation], ID: a[flaggerv1beta1.RequestIDAnnotation],
		By: a[flaggerv1beta1.RequestByAnnotation], Reason: a[flaggerv1beta1.RequestReasonAnnotation]}
}

// idleWithNewRevision reports whether the Canary waits to start the
// analysis of a new revision: only then does it need a slot.
func idleWithNewRevision(in statemachine.Input) bool {
	switch in.Status.Phase {
	case flaggerv1beta1.CanaryPhaseInitialized, flaggerv1beta1.CanaryPhaseSucceeded,
		flaggerv1beta1.CanaryPhaseFailed, flaggerv1beta1.CanaryPhaseWaiting:
		r := in.Obs.Revision
		return r != "" && r != in.Status.LastAppliedSpec && r != in.Status.LastPromotedSpec
	}
	return false
}

// routerOrLast returns the provider's router, or the problem of an unknown
// one and, if a release is in flight, the router it started with, so that
// it can be rolled back.
func (r *CanaryReconciler) routerOrLast(key types.NamespacedName, provider string) (router.Interface, *problem.Problem) {
	rt, p := r.routerFor(provider)
	if rt == nil {
		if last, ok := r.providers.Load(key); ok {
			rt, _ = r.routerFor(last.(string))
		}
	}
	return rt, p
}

// routerFor returns the provider's router, or the problem of an unknown one.
func (r *CanaryReconciler) routerFor(provider string) (router.Interface, *problem.Problem) {
	rt, err := router.New(provider, router.Deps{Client: r.Client, APIReader: r.APIReader, IngressAnnotationsPrefix: r.IngressAnnotationsPrefix, IngressClass: r.IngressClass,
		MeshClient: r.MeshClient, MeshAPIReader: r.MeshAPIReader})
	if err != nil {
		return nil, problem.New(problem.UnsupportedProvider, "%v", err)
	}
	return rt, nil
}

// invalidOr records bad input in the scope, or returns a transient error.
func (r *CanaryReconciler) invalidOr(sc *scope, err error) error {
	if p, ok := problem.As(err); ok {
		if sc.in.Obs.Invalid == nil {
			sc.in.Obs.Invalid = p
		}
		return nil
	}
	return fmt.Errorf("observing canary %s/%s: %w", sc.cd.Namespace, sc.cd.Name, err)
}

func workload(w canary.WorkloadState) statemachine.Workload {
	return statemachine.Workload{Exists: w.Exists, Replicas: w.Replicas, Ready: w.Ready, Stalled: w.Stalled, Message: w.Message, Revision: w.Revision}
}

// checkServices finds an apex, primary or canary Service that exists and
// belongs to someone else, before anything is decided: Sluice does not
// edit it, and a decision that could not be carried out is never recorded.
// A target that brings its own Services gets none generated: its Workload
// checks what it writes.
func (r *CanaryReconciler) checkServices(ctx context.Context, cd *flaggerv1beta1.Canary, st *canary.State) error {
	if st.OwnServices {
		return nil
	}
	apex, primary, canarySvc := router.ServiceNames(cd)
	names := []string{apex, primary, canarySvc}
	if cd.Spec.Analysis != nil && cd.Spec.Analysis.Baseline {
		names = append(names, router.BaselineServiceName(cd))
	}
	for _, name := range names {
		svc := &corev1.Service{}
		err := r.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: name}, svc)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading Service %s/%s: %w", cd.Namespace, name, err)
		}
		if err := router.CheckOwner(r.Client, svc, cd); err != nil {
			return err
		}
	}
	return nil
}

// checkReferences finds references Sluice refuses: another Canary already
// managing the same target, and, with -no-cross-namespace-refs, templates
// or alert providers in other namespaces.
func (r *CanaryReconciler) checkReferences(ctx context.Context, cd *flaggerv1beta1.Canary) *problem.Problem {
	if r.NoCrossNamespaceRefs && cd.Spec.Analysis != nil {
		for _, m := range cd.Spec.Analysis.Metrics {
			if m.TemplateRef != nil && m.TemplateRef.Namespace != "" && m.TemplateRef.Namespace != cd.Namespace {
				return problem.New(problem.CrossNamespaceReference,
					"metric %s refers to MetricTemplate %s/%s in another namespace, which -no-cross-namespace-refs forbids: move the template to %s",
					m.Name, m.TemplateRef.Namespace, m.TemplateRef.Name, cd.Namespace)
			}
		}
		for _, a := range cd.Spec.Analysis.Alerts {
			if a.ProviderRef.Namespace != "" && a.ProviderRef.Namespace != cd.Namespace {
				return problem.New(problem.CrossNamespaceReference,
					"alert %s refers to AlertProvider %s/%s in another namespace, which -no-cross-namespace-refs forbids: move the provider to %s",
					a.Name, a.ProviderRef.Namespace, a.ProviderRef.Name, cd.Namespace)
			}
		}
	}
	var list flaggerv1beta1.CanaryList
	if err := r.List(ctx, &list, client.InNamespace(cd.Namespace), client.MatchingFields{targetIndex: targetKey(cd)}); err != nil {
		// The index is only missing in tests that skip SetupWithManager;
		// a duplicate check is not worth failing the reconcile for, and the
		// next reconcile checks again.
		log.FromContext(ctx).V(1).Info("skipping the duplicate-target check", "error", err.Error())
		return nil //nolint:nilerr // see above: no problem to report
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
		return problem.New(problem.DuplicateTarget,
			"%s %s is already managed by Canary %s: a workload can have one Canary; delete this one or point it at another target",
			cd.Spec.TargetRef.Kind, cd.Spec.TargetRef.Name, owners[0].Name)
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
		if c.Type == flaggerv1beta1.ValidType && c.Reason == string(problem.MetricUnavailable) {
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
func (r *CanaryReconciler) metricProblem(ctx context.Context, cd *flaggerv1beta1.Canary) *problem.Problem {
	if err := r.Analyzer.Check(ctx, cd); err != nil {
		return &problem.Problem{Reason: problem.MetricUnavailable, Message: webhook.Redact(err.Error()), RetryAfter: planInterval(cd, r.MinInterval)}
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
