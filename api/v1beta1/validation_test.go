package v1beta1_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the API server:", err)
	}
	os.Exit(code)
}

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "api-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	return ns.Name
}

// readObjects decodes every document of a YAML file.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// TestExamples_AreAcceptedByTheAPIServer creates every example manifest (the
// shapes Flagger users write) with strict field validation, so an unknown
// field or a rejected value fails, and reads the Sluice kinds back into the
// Go types.
func TestExamples_AreAcceptedByTheAPIServer(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "compat", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples in testdata/compat: %v", err)
	}
	kinds := map[string]int{}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ns := newNamespace(t)
			for _, u := range readObjects(t, path) {
				u.SetNamespace(ns)
				ctx := context.Background()
				if err := env.Client.Create(ctx, u, client.FieldValidation("Strict")); err != nil {
					t.Fatalf("%s %s rejected: %v", u.GetKind(), u.GetName(), err)
				}
				kinds[u.GetKind()]++
				typed, ok := typedObject(u.GetKind())
				if !ok {
					continue
				}
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), typed); err != nil {
					t.Fatalf("reading %s %s into the Go type: %v", u.GetKind(), u.GetName(), err)
				}
			}
		})
	}
	for _, kind := range []string{"Canary", "MetricTemplate", "AlertProvider"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s among the examples", kind)
		}
	}
	t.Logf("accepted %v from %d files", kinds, len(paths))
}

func typedObject(kind string) (client.Object, bool) {
	switch kind {
	case "Canary":
		return &flaggerv1beta1.Canary{}, true
	case "MetricTemplate":
		return &flaggerv1beta1.MetricTemplate{}, true
	case "AlertProvider":
		return &flaggerv1beta1.AlertProvider{}, true
	}
	return nil, false
}

const validCanary = `
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 30s
    threshold: 5
    stepWeight: 10
    maxWeight: 50
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
    webhooks:
    - name: load-test
      url: http://loadtester.test/
    alerts:
    - name: on-call
      providerRef: {name: on-call}
`

func decode(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func set(value any, path ...string) func(*unstructured.Unstructured) error {
	return func(u *unstructured.Unstructured) error {
		return unstructured.SetNestedField(u.Object, value, path...)
	}
}

func remove(path ...string) func(*unstructured.Unstructured) error {
	return func(u *unstructured.Unstructured) error {
		unstructured.RemoveNestedField(u.Object, path...)
		return nil
	}
}

func setInList(value any, list []string, field ...string) func(*unstructured.Unstructured) error {
	return func(u *unstructured.Unstructured) error {
		items, _, err := unstructured.NestedSlice(u.Object, list...)
		if err != nil || len(items) == 0 {
			return fmt.Errorf("list %v: %w", list, err)
		}
		item, ok := items[0].(map[string]any)
		if !ok {
			return fmt.Errorf("list %v holds %T", list, items[0])
		}
		if err := unstructured.SetNestedField(item, value, field...); err != nil {
			return err
		}
		items[0] = item
		return unstructured.SetNestedSlice(u.Object, items, list...)
	}
}

// TestInvalidCanary_IsRejectedWithAClearMessage checks that the API server
// refuses Canaries that Sluice could not act on, and says why. Each of them
// is rejected by Flagger's schema too or could never run under Flagger
// (flagger_strictness_test.go); values Flagger accepts and Sluice cannot
// run are reported at run time instead (pkg/canary.SpecProblem).
func TestInvalidCanary_IsRejectedWithAClearMessage(t *testing.T) {
	metrics := []string{"spec", "analysis", "metrics"}
	webhooks := []string{"spec", "analysis", "webhooks"}
	tests := []struct {
		name   string
		mutate []func(*unstructured.Unstructured) error
		want   []string
	}{
		{"fractional weight", []func(*unstructured.Unstructured) error{set(10.5, "spec", "analysis", "stepWeight")},
			[]string{"spec.analysis.stepWeight", "multiple of 1"}},
		{"unknown provider", []func(*unstructured.Unstructured) error{set("gatewayapi", "spec", "provider")},
			[]string{"spec.provider", "Unsupported value", `"gatewayapi:v1"`}},
		{"unknown target kind", []func(*unstructured.Unstructured) error{set("StatefulSet", "spec", "targetRef", "kind")},
			[]string{"spec.targetRef.kind", "Unsupported value"}},
		{"missing targetRef", []func(*unstructured.Unstructured) error{remove("spec", "targetRef")},
			[]string{"spec.targetRef", "Required value"}},
		{"missing analysis", []func(*unstructured.Unstructured) error{remove("spec", "analysis")},
			[]string{"spec.analysis", "Required value"}},
		{"malformed interval", []func(*unstructured.Unstructured) error{set("ten seconds", "spec", "analysis", "interval")},
			[]string{"spec.analysis.interval", "should match"}},
		{"malformed metric interval", []func(*unstructured.Unstructured) error{setInList("1 minute", metrics, "interval")},
			[]string{"spec.analysis.metrics[0].interval", "should match"}},
		{"missing threshold", []func(*unstructured.Unstructured) error{remove("spec", "analysis", "threshold")},
			[]string{"spec.analysis.threshold", "Required value"}},
		{"both iterations and stepWeight", []func(*unstructured.Unstructured) error{set(int64(10), "spec", "analysis", "iterations")},
			[]string{"set exactly one of iterations"}},
		{"no strategy", []func(*unstructured.Unstructured) error{remove("spec", "analysis", "stepWeight")},
			[]string{"set exactly one of iterations"}},
		{"missing port", []func(*unstructured.Unstructured) error{remove("spec", "service", "port")},
			[]string{"spec.service.port", "Required value"}},
		{"unknown webhook type", []func(*unstructured.Unstructured) error{setInList("pre-promotion", webhooks, "type")},
			[]string{"spec.analysis.webhooks[0].type", "Unsupported value"}},
		{"unknown alert severity", []func(*unstructured.Unstructured) error{setInList("critical", []string{"spec", "analysis", "alerts"}, "severity")},
			[]string{"spec.analysis.alerts[0].severity", "Unsupported value"}},
		{"A/B match with two string matches", []func(*unstructured.Unstructured) error{
			set([]any{map[string]any{"headers": map[string]any{"x-canary": map[string]any{"exact": "a", "regex": "b"}}}}, "spec", "analysis", "match")},
			[]string{"set exactly one of exact, prefix, suffix and regex"}},
		{"empty session cookie name", []func(*unstructured.Unstructured) error{
			set(map[string]any{"cookieName": ""}, "spec", "analysis", "sessionAffinity")},
			[]string{"cookieName must be set and differ from primaryCookieName"}},
		{"step weight beyond int32", []func(*unstructured.Unstructured) error{set(int64(3_000_000_000), "spec", "analysis", "stepWeight")},
			[]string{"spec.analysis.stepWeight", "less than or equal to 2147483647"}},
		{"load balancer with simple and consistentHash", []func(*unstructured.Unstructured) error{
			set(map[string]any{"simple": "RANDOM", "consistentHash": map[string]any{"useSourceIp": true}}, "spec", "service", "trafficPolicy", "loadBalancer")},
			[]string{"set either simple or consistentHash with exactly one of"}},
		{"consistentHash with two keys", []func(*unstructured.Unstructured) error{
			set(map[string]any{"consistentHash": map[string]any{"useSourceIp": true, "httpHeaderName": "x"}}, "spec", "service", "trafficPolicy", "loadBalancer")},
			[]string{"set either simple or consistentHash with exactly one of"}},
		{"same session cookie names", []func(*unstructured.Unstructured) error{
			set(map[string]any{"cookieName": "c", "primaryCookieName": "c"}, "spec", "analysis", "sessionAffinity")},
			[]string{"cookieName must be set and differ from primaryCookieName"}},
	}
	ns := newNamespace(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := decode(t, validCanary)
			u.SetNamespace(ns)
			for _, m := range tt.mutate {
				if err := m(u); err != nil {
					t.Fatal(err)
				}
			}
			err := env.Client.Create(context.Background(), u)
			if err == nil {
				_ = env.Client.Delete(context.Background(), u)
				t.Fatal("the API server accepted the Canary")
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}

	t.Run("the valid base is accepted", func(t *testing.T) {
		u := decode(t, validCanary)
		u.SetNamespace(ns)
		if err := env.Client.Create(context.Background(), u, client.FieldValidation("Strict")); err != nil {
			t.Fatal(err)
		}
	})
}

// TestInvalidTemplatesAndProviders_AreRejected covers MetricTemplate and
// AlertProvider validation.
func TestInvalidTemplatesAndProviders_AreRejected(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		want     []string
	}{
		{"unknown metric provider", `
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: t}
spec:
  provider: {type: opentsdb, address: http://tsdb}
  query: up`, []string{"spec.provider.type", "Unsupported value"}},
		{"template without query", `
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: t}
spec:
  provider: {type: prometheus}`, []string{"spec.query", "Required value"}},
		{"unknown alert provider", `
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata: {name: p}
spec: {type: pagerduty, address: https://events.example.com}`, []string{"spec.type", "Unsupported value"}},
		{"alert provider without address or secret", `
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata: {name: p}
spec: {type: slack, channel: general}`, []string{"set address or secretRef"}},
	}
	ns := newNamespace(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := decode(t, tt.manifest)
			u.SetNamespace(ns)
			err := env.Client.Create(context.Background(), u)
			if err == nil {
				t.Fatal("the API server accepted the object")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
