package controller

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
	"github.com/sluicedev/sluice/pkg/metrics"
	"github.com/sluicedev/sluice/pkg/notifier"
	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/recorder"
	"github.com/sluicedev/sluice/pkg/webhook"
)

// ControllerName is the name of the Canary controller. It labels the
// controller_runtime_* metrics (controller="canary") and the log lines.
const ControllerName = "canary"

// flaggerRecheck is how often a Canary left alone because Flagger runs is
// looked at again.
const flaggerRecheck = 30 * time.Second

// Finalizer is the finalizer Sluice holds on Canaries with
// revertOnDeletion, with Flagger's name so that either controller can
// release it.
const Finalizer = "finalizer.flagger.app"

// CanaryReconciler drives Canaries through their analysis: it observes the
// cluster, asks the state machine what to do, does it, and persists the
// status.
type CanaryReconciler struct {
	client.Client
	// Scheme knows the kinds the reconciler reads and writes.
	Scheme *runtime.Scheme
	// APIReader reads ConfigMaps, Secrets and autoscalers directly, so that
	// they need not be cached cluster-wide.
	APIReader client.Reader
	// Recorder emits the Kubernetes events (core/v1, reason Synced, as
	// Flagger). The core API's correlator counts repeats of a message
	// instead of storing each; events.k8s.io would merge every event of a
	// reason and action into one series and hide distinct messages.
	Recorder record.EventRecorder
	// Workloads holds the workload settings from the flags.
	Workloads canary.Config
	// MeshProvider is the provider of Canaries without spec.provider.
	MeshProvider string
	// IngressAnnotationsPrefix is the prefix of the NGINX canary
	// annotations (-ingress-annotations-prefix); empty means NGINX's.
	IngressAnnotationsPrefix string
	// IngressClass is set on the Contour HTTPProxies Sluice creates
	// (-ingress-class); empty means none.
	IngressClass string
	// MeshClient and MeshAPIReader reach the cluster that holds the
	// routing objects (-kubeconfig-service-mesh); nil means this one. See
	// router.Deps.
	MeshClient    client.Client
	MeshAPIReader client.Reader
	// Analyzer runs the metric checks.
	Analyzer *metrics.Analyzer
	// Webhooks calls the analysis webhooks.
	Webhooks webhook.Caller
	// EventWebhook receives every event of the Canaries without event
	// webhooks of their own (-event-webhook); empty means none.
	EventWebhook string
	// Notifier receives every event as a message.
	Notifier notifier.Interface
	// Metrics exports Flagger's flagger_canary_* metrics and Sluice's own;
	// nil exports nothing.
	Metrics *recorder.Recorder
	// MaxConcurrentCanaries caps the analyses running at once; 0 means no cap.
	MaxConcurrentCanaries int
	// NoCrossNamespaceRefs refuses references to other namespaces.
	NoCrossNamespaceRefs bool
	// MinInterval is the shortest time between analysis steps.
	MinInterval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// targets remembers each Canary's target name, the label of its
	// metrics, so that they can be dropped once the Canary is gone.
	targets sync.Map

	// written remembers, per Canary, the resourceVersion of the last status
	// this reconciler wrote, so that it never acts on an older cached copy
	// (which could promote twice).
	written sync.Map

	// KeepStatusInMemory is set when the installed Canary CRD is Flagger's,
	// whose status schema drops the fields Sluice adds: they are then kept
	// in memory (see statusMemory).
	KeepStatusInMemory bool
	memory             statusMemory

	// Flagger, when set, tells whether a Flagger controller runs: Sluice
	// then acts on no Canary (nil with -allow-running-flagger).
	Flagger *FlaggerDetector

	// CheckConcurrency bounds the gates and checks (webhook calls, metric
	// queries) running at once, over all Canaries; 0 means 64.
	CheckConcurrency int
	checks           *checkRunner

	// configs keeps the ConfigMaps targets use, read again only when they
	// change.
	configs canary.ConfigCache

	// admission counts the analyses running, for -max-concurrent-canaries.
	admission admission

	// providers remembers, per Canary, the traffic provider of its last
	// valid reconcile, so that a release whose spec.provider is edited to
	// an unknown name can still be rolled back through the old router.
	providers sync.Map
}

// Reconcile reads a Canary, decides and acts. It reads like a checklist:
// get, guard, finalizer, suspend, observe, claim the step, run due checks,
// decide, persist the decision, act on it, tell people.
//
// The decision is persisted before anything is done (write-ahead), under
// optimistic concurrency: a conflict means another view of the world, and
// nothing was done. The actions that follow are idempotent and implied by
// the persisted status, so a reconcile interrupted after the write is
// finished by the next one, and none acts on a decision that was not
// recorded.
func (r *CanaryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	start := time.Now()
	if r.Metrics != nil {
		defer func() { r.Metrics.ObserveReconcile(time.Since(start), err) }()
	}
	logger := log.FromContext(ctx)
	var cd flaggerv1beta1.Canary
	if err := r.Get(ctx, req.NamespacedName, &cd); err != nil {
		if apierrors.IsNotFound(err) {
			r.written.Delete(req.NamespacedName)
			r.memory.forget(req.NamespacedName)
			r.checks.forget(req.NamespacedName)
			r.admission.release(req.NamespacedName)
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading canary %s: %w", req.NamespacedName, err)
	}
	if r.stale(&cd) {
		logger.V(1).Info("The cached Canary is older than our last status write; waiting for the cache")
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	if r.KeepStatusInMemory {
		r.memory.fill(req.NamespacedName, &cd.Status)
	}
	if live := r.Flagger.Live(); live != "" {
		// Two controllers would fight over every object: touch nothing, not
		// even the finalizer or the status, and look again later.
		msg := fmt.Sprintf("Sluice does not act on this Canary while Flagger runs (%s): scale Flagger to zero "+
			"(see docs/migrate-from-flagger.md), or start Sluice with -allow-running-flagger", live)
		r.Recorder.Event(&cd, corev1.EventTypeWarning, eventReason, msg)
		logger.Info("Not acting: Flagger runs", "evidence", live)
		return ctrl.Result{RequeueAfter: cmp.Or(r.Flagger.Interval, flaggerRecheck)}, nil
	}
	if done, err := r.syncFinalizer(ctx, &cd); done || err != nil {
		return ctrl.Result{}, err
	}
	if cd.Spec.Suspend && cd.DeletionTimestamp.IsZero() {
		logger.V(1).Info("Canary is suspended; nothing to do")
		return ctrl.Result{}, nil
	}

	sc, err := r.observe(ctx, &cd)
	if err != nil {
		return ctrl.Result{}, err
	}
	results, wait, err := r.results(ctx, sc, &cd)
	if err != nil || wait {
		// The step's gates and checks run in the background; their end
		// wakes this Canary (the backstop requeue covers a lost wake-up).
		return ctrl.Result{RequeueAfter: 5 * time.Second}, err
	}
	sc.in.Results = results
	before := *sc.in.Status.DeepCopy()
	decision := statemachine.Decide(sc.in)
	r.admission.decided(sc.key(), decision.Status.Phase)
	if err := r.persist(ctx, &cd, decision.Status); err != nil {
		r.admission.decided(sc.key(), before.Phase)
		return ctrl.Result{}, err
	}
	if err := r.apply(ctx, sc, decision); err != nil {
		p, ok := problem.As(err)
		if !ok {
			// Transient: the status holds the decision, and the next
			// reconcile carries out what is left of it.
			r.emit(ctx, &cd, decision)
			return ctrl.Result{}, err
		}
		// An action ran into bad input (an object someone else owns, routing
		// the provider cannot build): decide again from the status this
		// reconcile started from, with the problem, so that the decision
		// that could not be carried out is replaced and not announced.
		decision, err = r.redecide(ctx, sc, &cd, before, p)
		if err != nil {
			return ctrl.Result{}, err
		}
	}
	r.emit(ctx, &cd, decision)
	if decision.ClearRequest {
		if err := r.clearRequest(ctx, &cd); err != nil {
			return ctrl.Result{}, err
		}
	}
	if hasAction(decision.Actions, statemachine.RunPostRollout) {
		r.postRollout(ctx, &cd)
	}
	r.export(sc, time.Since(start))
	if hasAction(decision.Actions, statemachine.RemoveFinalizer) {
		return ctrl.Result{}, r.removeFinalizer(ctx, &cd)
	}
	return ctrl.Result{RequeueAfter: r.requeue(&cd, decision)}, nil
}

// requeue is when to look at the Canary again: when the decision says,
// and, for a Canary whose target uses Secrets, at least every analysis
// interval: Secrets are not watched (Sluice reads only the ones a Canary
// names), so a change of their data is found by looking, as Flagger does.
func (r *CanaryReconciler) requeue(cd *flaggerv1beta1.Canary, d statemachine.Decision) time.Duration {
	after := d.RequeueAfter
	for k := range d.Status.TrackedConfigs {
		if strings.HasPrefix(k, "secret/") {
			poll := planInterval(cd, r.MinInterval)
			if after == 0 || poll < after {
				after = poll
			}
			break
		}
	}
	return after
}

// redecide replaces a decision that ran into bad input while it was carried
// out: it decides from the status the reconcile started from, with the
// problem, persists that, and carries out what it allows. A problem found
// by the router means the routing cannot be written, so no route change is
// attempted.
func (r *CanaryReconciler) redecide(ctx context.Context, sc *scope, cd *flaggerv1beta1.Canary, before flaggerv1beta1.CanaryStatus, p *problem.Problem) (statemachine.Decision, error) {
	sc.in.Status = before
	sc.in.Obs.Invalid = p
	if p.Reason == problem.UnsupportedRouting || p.Reason == problem.NotOwned {
		sc.in.Obs.Routable = false
	}
	decision := statemachine.Decide(sc.in)
	r.admission.decided(sc.key(), decision.Status.Phase)
	if err := r.persist(ctx, cd, decision.Status); err != nil {
		return decision, err
	}
	if err := r.apply(ctx, sc, decision); err != nil {
		return decision, err
	}
	return decision, nil
}

func (r *CanaryReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// stale reports whether the cached Canary predates the last status this
// reconciler wrote. resourceVersions are opaque to clients, but the API
// server hands out increasing etcd revisions; when one does not parse, the
// guard stands aside.
func (r *CanaryReconciler) stale(cd *flaggerv1beta1.Canary) bool {
	v, ok := r.written.Load(client.ObjectKeyFromObject(cd))
	if !ok {
		return false
	}
	last, err1 := strconv.ParseUint(v.(string), 10, 64)
	seen, err2 := strconv.ParseUint(cd.ResourceVersion, 10, 64)
	return err1 == nil && err2 == nil && seen < last
}

// syncFinalizer holds the finalizer while revertOnDeletion is set and
// releases it otherwise. It reports done when there is nothing else to do.
func (r *CanaryReconciler) syncFinalizer(ctx context.Context, cd *flaggerv1beta1.Canary) (bool, error) {
	has := controllerutil.ContainsFinalizer(cd, Finalizer)
	deleting := !cd.DeletionTimestamp.IsZero()
	switch {
	case deleting && !has:
		return true, nil
	case !deleting && cd.Spec.RevertOnDeletion && !has:
		patch := client.MergeFromWithOptions(cd.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(cd, Finalizer)
		if err := r.Patch(ctx, cd, patch); err != nil {
			return false, fmt.Errorf("adding finalizer: %w", err)
		}
	case !deleting && !cd.Spec.RevertOnDeletion && has:
		return false, r.removeFinalizer(ctx, cd)
	}
	return false, nil
}

// clearRequest removes the request annotations once the status recording
// the request's outcome is persisted, so that a reader who sees them gone
// sees the outcome. The patch is guarded by the resourceVersion of that
// write: a new request made meanwhile conflicts and is taken next.
func (r *CanaryReconciler) clearRequest(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	patch := client.MergeFromWithOptions(cd.DeepCopy(), client.MergeFromWithOptimisticLock{})
	for _, k := range []string{flaggerv1beta1.RequestAnnotation, flaggerv1beta1.RequestIDAnnotation,
		flaggerv1beta1.RequestReasonAnnotation, flaggerv1beta1.RequestByAnnotation} {
		delete(cd.Annotations, k)
	}
	if err := r.Patch(ctx, cd, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the request annotations of canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

func (r *CanaryReconciler) removeFinalizer(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	patch := client.MergeFromWithOptions(cd.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if !controllerutil.RemoveFinalizer(cd, Finalizer) {
		return nil
	}
	if err := r.Patch(ctx, cd, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer: %w", err)
	}
	return nil
}

func hasAction(actions []statemachine.Action, k statemachine.ActionKind) bool {
	for _, a := range actions {
		if a.Kind == k {
			return true
		}
	}
	return false
}
