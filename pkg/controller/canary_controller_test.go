package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the API server: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the API server: %v\n", err)
	}
	os.Exit(code)
}

// logLines collects a logger's lines as JSON objects.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) logger() logr.Logger {
	return funcr.NewJSON(func(obj string) {
		var m map[string]any
		if err := json.Unmarshal([]byte(obj), &m); err != nil {
			m = map[string]any{"unparsable": obj}
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, m)
	}, funcr.Options{Verbosity: 1})
}

// find returns the first line with msg and the given key/values.
func (l *logLines) find(msg string, kv map[string]any) (map[string]any, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		if line["msg"] != msg {
			continue
		}
		for k, v := range kv {
			if line[k] != v {
				continue next
			}
		}
		return line, true
	}
	return nil, false
}

// reconcileTotal reads controller_runtime_reconcile_total for the canary
// controller and result from controller-runtime's metrics registry.
func reconcileTotal(result string) (float64, error) {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return 0, fmt.Errorf("gathering metrics: %w", err)
	}
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["controller"] == ControllerName && labels["result"] == result {
				return m.GetCounter().GetValue(), nil
			}
		}
	}
	return 0, nil
}

// eventually polls cond every 100ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not true after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func newCanary(namespace, name string) *flaggerv1beta1.Canary {
	return &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: flaggerv1beta1.CanarySpec{
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   flaggerv1beta1.CanaryService{Port: 9898},
			Analysis: &flaggerv1beta1.CanaryAnalysis{
				Interval: "1m", Threshold: 5, StepWeight: ptr.To[int32](10), MaxWeight: ptr.To[int32](50),
			},
		},
	}
}

func TestCanaryReconciler_ReconcilesACreatedCanary(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	logs := &logLines{}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 logs.logger(),
		// -count=N registers the "canary" controller once per run in this
		// process; the name check exists to keep metrics apart, which the
		// test handles by counting from the value before the run.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("creating the manager: %v", err)
	}
	r := &CanaryReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme()}
	if err := r.SetupWithManager(mgr, 2); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("manager stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop within 30s")
		}
	})

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "canary-reconciler-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	before, err := reconcileTotal("success")
	if err != nil {
		t.Fatal(err)
	}
	canary := newCanary(ns.Name, "podinfo")
	if err := env.Client.Create(ctx, canary); err != nil {
		t.Fatalf("creating the Canary: %v", err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), canary) })

	eventually(t, 30*time.Second, "the reconciler logged the Canary", func() error {
		if _, ok := logs.find("Reconciling Canary", map[string]any{"namespace": ns.Name, "name": "podinfo", "controller": ControllerName}); !ok {
			return errors.New(`no "Reconciling Canary" line for the Canary`)
		}
		return nil
	})
	eventually(t, 10*time.Second, "reconcile_total counts a success", func() error {
		n, err := reconcileTotal("success")
		if err != nil {
			return err
		}
		if n < before+1 {
			return fmt.Errorf("controller_runtime_reconcile_total{controller=%q,result=\"success\"} = %v, want at least %v", ControllerName, n, before+1)
		}
		return nil
	})
	if n, err := reconcileTotal("error"); err != nil || n != 0 {
		t.Errorf("reconcile errors = %v (%v), want 0", n, err)
	}
}

func TestCanaryReconciler_MissingCanaryNeedsNothing(t *testing.T) {
	t.Parallel()
	r := &CanaryReconciler{Client: env.Client, Scheme: env.Scheme}
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "default", Name: "does-not-exist"}})
	if err != nil {
		t.Errorf("Reconcile(missing Canary) error = %v, want nil", err)
	}
	if res != (ctrl.Result{}) {
		t.Errorf("Reconcile(missing Canary) = %+v, want an empty result", res)
	}
}
