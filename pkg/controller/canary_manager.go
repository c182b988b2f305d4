package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	knativev1 "github.com/sluicedev/sluice/pkg/apis/knative/v1"
	"github.com/sluicedev/sluice/pkg/router"
)

// Field indexes on Canaries, so that a change to a workload or a config
// wakes only the Canaries that use it.
const (
	// targetIndex holds "<Kind>/<name>" of the target.
	targetIndex = "spec.targetRef"
	// configIndex holds the "configmap/<name>" and "secret/<name>" keys of
	// the tracked configs.
	configIndex = "status.trackedConfigs"
)

func targetKey(cd *flaggerv1beta1.Canary) string {
	return cd.Spec.TargetRef.Kind + "/" + cd.Spec.TargetRef.Name
}

// SetupWithManager registers the reconciler, its indexes and its watches,
// running at most maxConcurrentReconciles reconciles at a time (the
// -threadiness flag). Values below 1 mean 1.
func (r *CanaryReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrentReconciles int) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &flaggerv1beta1.Canary{}, targetIndex, func(o client.Object) []string {
		return []string{targetKey(o.(*flaggerv1beta1.Canary))}
	}); err != nil {
		return fmt.Errorf("indexing canaries by target: %w", err)
	}
	if err := idx.IndexField(ctx, &flaggerv1beta1.Canary{}, configIndex, func(o client.Object) []string {
		var keys []string
		for k := range o.(*flaggerv1beta1.Canary).Status.TrackedConfigs {
			keys = append(keys, k)
		}
		return keys
	}); err != nil {
		return fmt.Errorf("indexing canaries by tracked config: %w", err)
	}
	if r.Metrics != nil {
		if err := mgr.Add(manager.RunnableFunc(r.countCanaries)); err != nil {
			return fmt.Errorf("adding the canary counter: %w", err)
		}
	}
	if maxConcurrentReconciles < 1 {
		maxConcurrentReconciles = 1
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&flaggerv1beta1.Canary{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&appsv1.DaemonSet{}).
		Owns(&corev1.Service{})
	// The routing objects are watched too, so that an edit or a deletion by
	// someone else is seen and restored at once, not at the next step.
	for _, obj := range r.servedRoutingObjects(mgr) {
		b = b.Owns(obj)
	}
	r.checks = newCheckRunner(r.CheckConcurrency)
	b = b.WatchesRawSource(source.Channel(r.checks.events, &handler.EnqueueRequestForObject{}))
	// Service targets: a Kubernetes Service, and a Knative Service where the
	// cluster serves them.
	b = b.Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.byTarget("Service")))
	if serves(mgr, &knativev1.Service{}) {
		b = b.Watches(&knativev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.byTarget("Service")))
	}
	err := b.
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.byTarget("Deployment"))).
		Watches(&appsv1.DaemonSet{}, handler.EnqueueRequestsFromMapFunc(r.byTarget("DaemonSet"))).
		WatchesMetadata(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.byConfig("configmap"))).
		Named(ControllerName).
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: maxConcurrentReconciles, RateLimiter: rateLimiter()}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the %s controller: %w", ControllerName, err)
	}
	return nil
}

// servedRoutingObjects returns the routing object kinds of every router
// whose API the cluster serves; a kind without its CRD cannot be watched.
func (r *CanaryReconciler) servedRoutingObjects(mgr ctrl.Manager) []client.Object {
	logger := mgr.GetLogger().WithName(ControllerName)
	var out []client.Object
	for _, obj := range router.OwnedObjects() {
		gvk, err := apiutil.GVKForObject(obj, mgr.GetScheme())
		if err != nil {
			continue
		}
		if _, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			logger.V(1).Info("Not watching a routing kind the cluster does not serve", "kind", gvk.String())
			continue
		}
		out = append(out, obj)
	}
	return out
}

// serves reports whether the cluster serves the kind of obj, which the
// manager's scheme must know.
func serves(mgr ctrl.Manager, obj client.Object) bool {
	gvk, err := apiutil.GVKForObject(obj, mgr.GetScheme())
	if err != nil {
		return false
	}
	_, err = mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	return err == nil
}

// maxErrorBackoff caps the wait before a Canary whose reconcile failed is
// tried again. controller-runtime's default grows to 1000 s, so a Canary
// that hit a few transient errors would wait minutes; Sluice's steps are
// ten seconds apart at the shortest.
const maxErrorBackoff = 10 * time.Second

// rateLimiter paces the retries of failed reconciles: exponential per
// Canary from 5 ms up to maxErrorBackoff, within an overall budget of 50
// retries per second (bursts of 300), so that an API server outage does
// not turn into a storm when it ends.
func rateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, maxErrorBackoff),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(50), 300)},
	)
}

// byTarget maps a workload to the Canaries that target it.
func (r *CanaryReconciler) byTarget(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		if strings.HasSuffix(o.GetName(), "-primary") && len(o.GetOwnerReferences()) > 0 {
			return nil // primaries wake their Canary through Owns
		}
		return r.canariesMatching(ctx, o.GetNamespace(), targetIndex, kind+"/"+o.GetName())
	}
}

// byConfig maps a ConfigMap or Secret to the Canaries that track it.
func (r *CanaryReconciler) byConfig(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.canariesMatching(ctx, o.GetNamespace(), configIndex, kind+"/"+o.GetName())
	}
}

func (r *CanaryReconciler) canariesMatching(ctx context.Context, ns, index, key string) []reconcile.Request {
	var list flaggerv1beta1.CanaryList
	if err := r.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{index: key}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, c := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}})
	}
	return reqs
}

// countInterval is how often flagger_canary_total is refreshed.
const countInterval = 30 * time.Second

// countCanaries keeps flagger_canary_total (Canaries per namespace) current
// from the cache, until ctx ends.
func (r *CanaryReconciler) countCanaries(ctx context.Context) error {
	seen := map[string]bool{}
	for {
		var list flaggerv1beta1.CanaryList
		if err := r.List(ctx, &list); err == nil {
			counts := map[string]int{}
			for _, c := range list.Items {
				counts[c.Namespace]++
			}
			for ns := range seen {
				if counts[ns] == 0 {
					r.Metrics.SetTotal(ns, 0)
				}
			}
			for ns, n := range counts {
				r.Metrics.SetTotal(ns, n)
				seen[ns] = true
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(countInterval):
		}
	}
}
