package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/metrics"
	"github.com/sluicedev/sluice/pkg/notifier"
	"github.com/sluicedev/sluice/pkg/webhook"
)

// specMutation sets one field of a Canary to one of a few values that test
// the API server's validation and the controller's handling of what it
// accepts: out-of-range numbers, wrong types, bad durations and URLs,
// references to nothing, unsupported kinds and providers. A nil value
// deletes the field. Every address points at loopback: no test traffic
// leaves the machine.
type specMutation struct {
	path   []string
	values []any
}

var specMutations = []specMutation{
	{[]string{"spec", "provider"}, []any{"istio", "gatewayapi:v1", "nginx", "linkerd", "contour", "traefik", "appmesh", "bogus", "", int64(7)}},
	{[]string{"spec", "targetRef", "kind"}, []any{"DaemonSet", "StatefulSet", "Pod", "", nil}},
	{[]string{"spec", "targetRef", "name"}, []any{"missing", "", "a/b", strings.Repeat("x", 300), nil}},
	{[]string{"spec", "targetRef", "apiVersion"}, []any{"apps/v2", "v1", ""}},
	{[]string{"spec", "service", "port"}, []any{int64(0), int64(-1), int64(70000), "http", 1.5, nil}},
	{[]string{"spec", "service", "portName"}, []any{"http", "", "Not_Valid"}},
	{[]string{"spec", "analysis", "interval"}, []any{"0s", "-1s", "1h", "10sec", "", "1.5s", int64(30), nil}},
	{[]string{"spec", "analysis", "threshold"}, []any{int64(0), int64(-1), int64(1000000), 2.5, "x"}},
	{[]string{"spec", "analysis", "iterations"}, []any{int64(0), int64(-1), int64(1000000000), nil}},
	{[]string{"spec", "analysis", "stepWeight"}, []any{int64(0), int64(50), int64(101), int64(-5), nil}},
	{[]string{"spec", "analysis", "stepWeights"}, []any{[]any{}, []any{int64(10), int64(5)}, []any{int64(10), int64(200)}, []any{int64(10), int64(50), int64(100)}, nil}},
	{[]string{"spec", "analysis", "maxWeight"}, []any{int64(0), int64(100), int64(150), int64(-1), nil}},
	{[]string{"spec", "analysis", "mirror"}, []any{true, "yes"}},
	{[]string{"spec", "analysis", "mirrorWeight"}, []any{int64(50), int64(101)}},
	{[]string{"spec", "analysis", "match"}, []any{
		[]any{map[string]any{"headers": map[string]any{"x-canary": map[string]any{"exact": "a", "regex": "("}}}},
		[]any{map[string]any{"headers": map[string]any{"x-canary": map[string]any{"regex": "("}}}},
		[]any{map[string]any{}}, []any{},
	}},
	{[]string{"spec", "analysis", "metrics"}, []any{
		[]any{map[string]any{"name": "request-success-rate", "thresholdRange": map[string]any{"min": 200.0, "max": 1.0}}},
		[]any{map[string]any{"name": "request-duration", "interval": "bogus"}},
		[]any{map[string]any{"name": "custom", "templateRef": map[string]any{"name": "missing"}}},
		[]any{map[string]any{"name": "custom", "templateRef": map[string]any{"name": "x", "namespace": "elsewhere"}}},
		[]any{map[string]any{"name": "q", "query": "sum(", "onNoData": "hold"}},
		[]any{map[string]any{"name": "", "onNoData": "bogus"}},
		[]any{map[string]any{"name": "a"}, map[string]any{"name": "a"}},
	}},
	{[]string{"spec", "analysis", "webhooks"}, []any{
		[]any{map[string]any{"name": "h", "url": "ftp://127.0.0.1/"}},
		[]any{map[string]any{"name": "h", "url": ""}},
		[]any{map[string]any{"name": "h", "url": "http://127.0.0.1:9/?token=secret", "type": "rollback"}},
		[]any{map[string]any{"name": "h", "url": "not a url", "type": "pre-rollout"}},
		[]any{map[string]any{"name": "h", "url": "http://127.0.0.1:9/", "type": "bogus"}},
		[]any{map[string]any{"name": "h", "url": "http://127.0.0.1:9/", "type": "confirm-rollout", "timeout": "-1s"}},
		[]any{map[string]any{"name": "h", "url": "http://127.0.0.1:9/", "type": "event", "timeout": "x"}},
		[]any{map[string]any{"name": "h", "url": "http://127.0.0.1:9/", "retries": int64(-1)}},
	}},
	{[]string{"spec", "analysis", "sessionAffinity"}, []any{map[string]any{"cookieName": "c"}, map[string]any{"cookieName": ""},
		map[string]any{"cookieName": "c", "primaryCookieName": "c"}}},
	{[]string{"spec", "analysis", "alerts"}, []any{[]any{map[string]any{"name": "a", "severity": "bogus", "providerRef": map[string]any{"name": "missing"}}},
		[]any{map[string]any{"name": "a", "providerRef": map[string]any{"name": "missing", "namespace": "elsewhere"}}}}},
	{[]string{"spec", "analysis", "stepWeightPromotion"}, []any{int64(30), int64(-3), int64(101)}},
	{[]string{"spec", "analysis", "canaryReadyThreshold"}, []any{int64(0), int64(101)}},
	{[]string{"spec", "analysis"}, []any{nil, map[string]any{}, "text"}},
	{[]string{"spec", "targetRef"}, []any{nil, map[string]any{}}},
	{[]string{"spec", "progressDeadlineSeconds"}, []any{int64(0), int64(-5), int64(1)}},
	{[]string{"spec", "skipAnalysis"}, []any{true}},
	{[]string{"spec", "revertOnDeletion"}, []any{true}},
	{[]string{"spec", "suspend"}, []any{true}},
	{[]string{"spec", "autoscalerRef"}, []any{map[string]any{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "missing"},
		map[string]any{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "missing"}}},
	{[]string{"spec", "service", "hosts"}, []any{[]any{"*"}, []any{"bad host!"}}},
	{[]string{"spec", "service", "gateways"}, []any{[]any{"mesh"}, []any{"a/b/c"}}},
	{[]string{"spec", "service", "portDiscovery"}, []any{true}},
	{[]string{"spec", "ingressRef"}, []any{map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "missing"}}},
	{[]string{"spec", "metricsServer"}, []any{"http://127.0.0.1:9", "not a url"}},
	{[]string{"spec", "bogusField"}, []any{"x"}},
}

// mutatedCanary is a valid Canary of target, changed by ops: each pair of
// bytes picks a mutation and its value.
func mutatedCanary(name, target string, ops []byte) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "flagger.app/v1beta1",
		"kind":       "Canary",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"provider":  "kubernetes",
			"targetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
			"service":   map[string]any{"port": int64(9898)},
			"analysis": map[string]any{
				"interval": "1s", "threshold": int64(2), "iterations": int64(1),
			},
		},
	}}
	for i := 0; i+1 < len(ops) && i < 16; i += 2 {
		m := specMutations[int(ops[i])%len(specMutations)]
		v := m.values[int(ops[i+1])%len(m.values)]
		if v == nil {
			unstructured.RemoveNestedField(u.Object, m.path...)
			continue
		}
		if err := unstructured.SetNestedField(u.Object, v, m.path...); err != nil {
			// A parent is not an object (an earlier mutation made it a
			// string): replace the parent.
			_ = unstructured.SetNestedField(u.Object, map[string]any{m.path[len(m.path)-1]: v}, m.path[:len(m.path)-1]...)
		}
	}
	return u
}

// specFuzz is the namespace and manager shared by the fuzz inputs, with a
// sentinel Canary that must stay served whatever the others hold.
type specFuzz struct {
	ns   string
	n    atomic.Int64
	stop func()
}

var (
	specFuzzOnce sync.Once
	specFuzzEnv  *specFuzz
	specFuzzErr  error
)

// startSpecFuzz creates the namespace, the workload simulator, a manager
// with the production metric resolver (against a closed loopback port)
// and the sentinel Canary.
func startSpecFuzz() (*specFuzz, error) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "specfuzz-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		return nil, err
	}
	mgrCtx, cancel := context.WithCancel(ctx)
	go simulateWorkloads(mgrCtx, env.Client, ns.Name)
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{ns.Name: {}}},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		cancel()
		return nil, err
	}
	r := &CanaryReconciler{
		Client: mgr.GetClient(), Scheme: mgr.GetScheme(), APIReader: mgr.GetAPIReader(),
		Recorder:     mgr.GetEventRecorderFor("sluice"), //nolint:staticcheck // see CanaryReconciler.Recorder
		Workloads:    canary.Config{SelectorLabels: []string{"app", "name", "app.kubernetes.io/name"}, ConfigTracking: true},
		MeshProvider: flaggerv1beta1.ProviderKubernetes,
		Analyzer: &metrics.Analyzer{Resolver: metrics.NewResolver(mgr.GetAPIReader(), metrics.ResolverConfig{
			MetricsServer: "http://127.0.0.1:9", MeshProvider: flaggerv1beta1.ProviderKubernetes, Kube: mgr.GetClient(),
		})},
		Webhooks:    &webhook.HTTPCaller{},
		Notifier:    notifier.Nop{},
		MinInterval: 100 * time.Millisecond,
	}
	if err := r.SetupWithManager(mgr, 2); err != nil {
		cancel()
		return nil, err
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(mgrCtx) }()
	s := &specFuzz{ns: ns.Name, stop: func() { cancel(); <-done }}
	sentinel := newCanary("sentinel")
	sentinel.Spec.Analysis.Metrics = nil
	for _, o := range []client.Object{newDeployment("sentinel", 1), sentinel} {
		o.SetNamespace(ns.Name)
		if err := env.Client.Create(ctx, o); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// validCondition is the Canary's Valid condition, nil without one.
func validCondition(cd *flaggerv1beta1.Canary) *flaggerv1beta1.CanaryCondition {
	for i := range cd.Status.Conditions {
		if cd.Status.Conditions[i].Type == flaggerv1beta1.ValidType {
			return &cd.Status.Conditions[i]
		}
	}
	return nil
}

// reconcilePanics is the number of panics controller-runtime recovered in
// reconciles, in this process.
func reconcilePanics() float64 {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return -1
	}
	var n float64
	for _, f := range families {
		if f.GetName() == "controller_runtime_reconcile_panics_total" {
			for _, m := range f.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// FuzzCanarySpec_ThroughTheAPIServer creates Canaries with generated specs,
// valid and invalid, through the real API server: each is either refused
// by validation with a message, or accepted and then handled by the
// controller (its status says it acted on this generation) without a
// panic, while the controller goes on serving a sentinel Canary.
func FuzzCanarySpec_ThroughTheAPIServer(f *testing.F) {
	for _, seed := range [][]byte{
		{},                   // valid as is
		{0, 7},               // an unknown provider
		{1, 2},               // a Pod target
		{2, 0},               // a missing target
		{4, 3},               // a string port
		{6, 3},               // interval 10sec
		{9, 1},               // stepWeight and iterations together
		{15, 0},              // a metric whose min is above its max
		{15, 2},              // a missing MetricTemplate
		{16, 2},              // a rollback webhook whose URL carries a token
		{16, 0},              // an ftp webhook
		{21, 0},              // no analysis
		{17, 1},              // session affinity without a cookie name
		{27, 0},              // an autoscaler that does not exist
		{9, 1, 8, 3, 11, 0},  // stepWeight 50, maxWeight 0
		{0, 1, 14, 0, 16, 4}, // Gateway API without Gateways, a bad regex match, a bogus hook type
	} {
		f.Add(seed)
	}
	f.Cleanup(func() {
		if specFuzzEnv != nil {
			specFuzzEnv.stop()
		}
	})
	f.Fuzz(func(t *testing.T, ops []byte) {
		specFuzzOnce.Do(func() { specFuzzEnv, specFuzzErr = startSpecFuzz() })
		if specFuzzErr != nil {
			t.Fatal(specFuzzErr)
		}
		s := specFuzzEnv
		ctx := t.Context()
		name := fmt.Sprintf("fz-%d", s.n.Add(1))
		panicsBefore := reconcilePanics()

		target := newDeployment(name, 1)
		target.Namespace = s.ns
		if err := env.Client.Create(ctx, target); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = env.Client.Delete(context.Background(), target) }()
		u := mutatedCanary(name, name, ops)
		u.SetNamespace(s.ns)
		err := env.Client.Create(ctx, u, client.FieldValidation("Strict"))
		switch {
		case err != nil && (apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)) && strings.TrimSpace(err.Error()) != "":
			return // refused, with a message
		case err != nil:
			t.Fatalf("creating %v: not a validation error: %v", u.Object["spec"], err)
		}
		defer func() { _ = env.Client.Delete(context.Background(), u) }()

		// Accepted: the controller acts on it and says so in its status;
		// a suspended Canary is left alone.
		if suspended, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); suspended {
			time.Sleep(time.Second)
			if got := reconcilePanics(); got != panicsBefore {
				t.Fatalf("a reconcile panicked with spec %v", u.Object["spec"])
			}
			return
		}
		var cd flaggerv1beta1.Canary
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: name}, &cd); err != nil {
				t.Fatal(err)
			}
			if cd.Status.ObservedGeneration == cd.Generation && (cd.Status.Phase != "" || validCondition(&cd) != nil) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("accepted spec %v was not handled in 30s: status %+v", u.Object["spec"], cd.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := reconcilePanics(); got != panicsBefore {
			t.Fatalf("a reconcile panicked (%v recovered panics, %v before) with spec %v", got, panicsBefore, u.Object["spec"])
		}

		// The sentinel is still served: a change to its spec is acted on.
		var sentinel flaggerv1beta1.Canary
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: "sentinel"}, &sentinel); err != nil {
			t.Fatal(err)
		}
		before := sentinel.DeepCopy()
		sentinel.Spec.Analysis.Threshold = 2 + int32(sentinel.Generation%2)
		if err := env.Client.Patch(ctx, &sentinel, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
		deadline = time.Now().Add(30 * time.Second)
		for {
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: "sentinel"}, &sentinel); err != nil {
				t.Fatal(err)
			}
			if sentinel.Status.ObservedGeneration == sentinel.Generation {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the sentinel Canary was not served after %v: status %+v", u.Object["spec"], sentinel.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
