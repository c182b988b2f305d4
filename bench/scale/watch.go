package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/e2e/cluster"
)

// watcher keeps, from watches on one namespace, the history of every
// Canary's status and the times Deployments finished rolling out. It only
// reads: its requests are the benchmark's, not the controller's.
type watcher struct {
	cache cache.Cache

	mu sync.Mutex
	// canaries holds each Canary's status changes, in the order seen.
	canaries map[string][]canaryObs
	// rolled holds, for each Deployment, the first time it was seen rolled
	// out at each generation.
	rolled map[string]map[int64]rolledObs
}

// rolledObs is when a Deployment was first seen rolled out at one
// generation, and with how many replicas.
type rolledObs struct {
	At       time.Time
	Replicas int32
}

// canaryObs is a Canary's status as seen at one moment: only the fields
// that move during a release.
type canaryObs struct {
	At           time.Time `json:"at"`
	Phase        string    `json:"phase"`
	Iterations   int32     `json:"iterations"`
	Weight       int32     `json:"weight"`
	FailedChecks int32     `json:"failedChecks"`
}

// sameState reports whether two observations show the same status.
func (o canaryObs) sameState(p canaryObs) bool {
	return o.Phase == p.Phase && o.Iterations == p.Iterations && o.Weight == p.Weight && o.FailedChecks == p.FailedChecks
}

// startWatcher watches the kinds given (Canaries, Deployments) in ns until
// ctx ends.
func startWatcher(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, ns string, kinds ...client.Object) (*watcher, error) {
	c, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{ns: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the benchmark's cache: %w", err)
	}
	w := &watcher{cache: c, canaries: map[string][]canaryObs{}, rolled: map[string]map[int64]rolledObs{}}
	for _, kind := range kinds {
		on := w.onDeployment
		if _, ok := kind.(*flaggerv1beta1.Canary); ok {
			on = w.onCanary
		}
		if err := w.handle(ctx, kind, on); err != nil {
			return nil, err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("watching namespace %s: the cache did not sync", ns)
	}
	return w, nil
}

// handle calls on with every added or updated object of obj's kind.
func (w *watcher) handle(ctx context.Context, obj client.Object, on func(any)) error {
	inf, err := w.cache.GetInformer(ctx, obj)
	if err != nil {
		return fmt.Errorf("watching %T: %w", obj, err)
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    on,
		UpdateFunc: func(_, o any) { on(o) },
	})
	if err != nil {
		return fmt.Errorf("watching %T: %w", obj, err)
	}
	return nil
}

func (w *watcher) onCanary(o any) {
	cd, ok := o.(*flaggerv1beta1.Canary)
	if !ok {
		return
	}
	obs := canaryObs{At: time.Now(), Phase: string(cd.Status.Phase), Iterations: cd.Status.Iterations,
		Weight: cd.Status.CanaryWeight, FailedChecks: cd.Status.FailedChecks}
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.canaries[cd.Name]
	if len(h) > 0 && h[len(h)-1].sameState(obs) {
		return
	}
	w.canaries[cd.Name] = append(h, obs)
}

func (w *watcher) onDeployment(o any) {
	d, ok := o.(*appsv1.Deployment)
	if !ok || cluster.RolloutProgress(d) != "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	gens := w.rolled[d.Name]
	if gens == nil {
		gens = map[int64]rolledObs{}
		w.rolled[d.Name] = gens
	}
	if _, seen := gens[d.Generation]; !seen {
		gens[d.Generation] = rolledObs{At: time.Now(), Replicas: ptr.Deref(d.Spec.Replicas, 1)}
	}
}

// phase is the last phase seen of Canary name.
func (w *watcher) phase(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.canaries[name]
	if len(h) == 0 {
		return ""
	}
	return h[len(h)-1].Phase
}

// history returns a copy of Canary name's status changes.
func (w *watcher) history(name string) []canaryObs {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]canaryObs(nil), w.canaries[name]...)
}

// rolledAt returns when Deployment name was first seen rolled out at
// generation gen or later, and false if it has not been yet.
func (w *watcher) rolledAt(name string, gen int64) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for g, r := range w.rolled[name] {
		if g >= gen && (first.IsZero() || r.At.Before(first)) {
			first = r.At
		}
	}
	return first, !first.IsZero()
}

// podsReadyAfter returns when Deployment name was first seen rolled out
// with at least one replica after t (its Pods were made and became ready),
// or the zero time if it has not been yet.
func (w *watcher) podsReadyAfter(name string, t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, r := range w.rolled[name] {
		if r.Replicas > 0 && r.At.After(t) && (first.IsZero() || r.At.Before(first)) {
			first = r.At
		}
	}
	return first
}

// waitFor polls done every 200ms until it returns true, and fails after
// timeout with what pending says is left.
func waitFor(ctx context.Context, timeout time.Duration, what string, done func() bool, pending func() string) error {
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not happen in %s: %s", what, timeout, pending())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
