package controller

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The reconcile benchmarks run against the real kube-apiserver and etcd of
// TestMain, with a manager whose rest.Config counts the requests that reach
// the API server. Besides ns/op (one op is one reconcile of one Canary,
// called directly on the manager's reconciler) they report, per reconcile:
//
//   - api-reads/op and api-writes/op: the requests the reconcile itself
//     sent (reads that the manager's cache answers are not requests);
//   - other-api-requests/op: every other request during the run, mostly
//     the Kubernetes events, which the recorder sends asynchronously (it
//     aggregates and rate-limits repeated events of one object).
//
// They are figures, not assertions: nothing fails on time. The manager's
// client has no client-side rate limit (see newReconcileFixture). Like the
// tests of this package they need kube-apiserver and etcd (make tools):
// without them TestMain stops with that hint before any benchmark runs.

// benchIdleShapes are the Canaries of the idle benchmark: blue/green on the
// kubernetes provider, a canary release on Istio, and the same with a
// target that uses a ConfigMap and a Secret.
var benchIdleShapes = []benchShape{
	{name: "kubernetes", objects: benchPlainTarget, canary: benchBlueGreenCanary},
	{name: "istio", objects: benchPlainTarget, canary: benchIstioCanary(10)},
	{name: "istio-configs", objects: benchConfiguredTarget, canary: benchIstioCanary(10)},
}

// BenchmarkReconcile_IdleCanaries measures the reconcile of an Initialized
// Canary with no new revision among n Canaries in the namespace: what a
// resync or a change to an object the Canary watches costs. Such a
// reconcile asks for no requeue (the benchmark fails otherwise), so an idle
// Canary costs nothing between changes. The Canaries of a shape are
// reconciled in turn.
func BenchmarkReconcile_IdleCanaries(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("canaries=%d", n), func(b *testing.B) {
			f := newReconcileFixture(b, n, benchIdleShapes)
			f.settle(b)
			for _, shape := range benchIdleShapes {
				b.Run(shape.name, func(b *testing.B) {
					names := f.names[shape.name]
					ctx := measuredContext()
					before := f.counter.snapshot()
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						res, err := f.r.Reconcile(ctx, f.request(names[i%len(names)]))
						if err != nil {
							b.Fatal(err)
						}
						if !res.IsZero() {
							// An idle Canary waits for a change; it is not polled.
							b.Fatalf("an idle reconcile asked to be requeued: %+v", res)
						}
						i++
					}
					f.quiesce(b)
					f.counter.report(b, before, i)
					for _, name := range names {
						if cd := f.fresh(b, name); cd.Status.Phase != flaggerv1beta1.CanaryPhaseInitialized {
							b.Fatalf("Canary %s left phase Initialized for %s", name, cd.Status.Phase)
						}
					}
				})
			}
		})
	}
}

// benchStepShapes are the Canaries of the analysis-step benchmark: blue/green on
// the kubernetes provider (a step writes the status), and a canary release
// on Istio whose weight grows by 1 (a step also writes the VirtualService).
var benchStepShapes = []benchShape{
	{name: "kubernetes-bluegreen", objects: benchPlainTarget, canary: benchBlueGreenCanary},
	{name: "istio-weight", objects: benchPlainTarget, canary: benchIstioCanary(1)},
}

// BenchmarkReconcile_AnalysisStep measures the reconcile that runs an
// analysis step: the metric checks (answered in process), the decision, a
// new weight where the strategy has one, and the status write. Each
// iteration moves the reconciler's clock by one interval and reconciles
// the next Canary of the shape, once the cache holds its last status.
func BenchmarkReconcile_AnalysisStep(b *testing.B) {
	const n = 20
	b.Run(fmt.Sprintf("canaries=%d", n), func(b *testing.B) {
		f := newReconcileFixture(b, n, benchStepShapes)
		for _, names := range f.names {
			for _, name := range names {
				f.setImage(b, name, "ghcr.io/example/podinfo:6.1.0")
			}
		}
		f.waitAll(b, "in its first analysis step", func(cd *flaggerv1beta1.Canary) bool {
			return cd.Status.Phase == flaggerv1beta1.CanaryPhaseProgressing && cd.Status.Iterations >= 1
		})
		f.settle(b)
		for _, shape := range benchStepShapes {
			b.Run(shape.name, func(b *testing.B) {
				names := f.names[shape.name]
				ctx := measuredContext()
				stepsBefore := f.steps(b, names)
				before := f.counter.snapshot()
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					b.StopTimer()
					name := names[i%len(names)]
					if cd := f.fresh(b, name); cd.Status.Phase != flaggerv1beta1.CanaryPhaseProgressing || cd.Status.CanaryWeight >= 99 {
						b.Fatalf("Canary %s has no analysis step left after %d reconciles (phase %s, weight %d): use a shorter -benchtime",
							name, i, cd.Status.Phase, cd.Status.CanaryWeight)
					}
					f.clock.advance(benchInterval)
					b.StartTimer()
					if _, err := f.r.Reconcile(ctx, f.request(name)); err != nil {
						b.Fatal(err)
					}
					i++
				}
				f.quiesce(b)
				f.counter.report(b, before, i)
				if steps := f.steps(b, names) - stepsBefore; steps != i {
					b.Fatalf("%d reconciles ran %d analysis steps, want one each", i, steps)
				}
			})
		}
	})
}

// setImage gives the target of Canary name a new image: a new revision.
func (f *reconcileFixture) setImage(b *testing.B, name, image string) {
	b.Helper()
	ctx := context.Background()
	var d appsv1.Deployment
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &d); err != nil {
		b.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := env.Client.Patch(ctx, &d, patch); err != nil {
		b.Fatal(err)
	}
}

// steps returns the analysis steps the Canaries have run, read from the
// API server.
func (f *reconcileFixture) steps(b *testing.B, names []string) int {
	b.Helper()
	total := 0
	for _, name := range names {
		var cd flaggerv1beta1.Canary
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &cd); err != nil {
			b.Fatal(err)
		}
		total += int(cd.Status.Iterations)
	}
	return total
}
