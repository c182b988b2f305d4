package v1beta1_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// warningLog collects the warnings the API server sends back.
type warningLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningLog) HandleWarningHeader(code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warningLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// renderedPolicies returns the ValidatingAdmissionPolicies and their
// bindings that kustomize/base installs.
func renderedPolicies(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(env.Root, "kustomize", "base"))
	if err != nil {
		t.Fatalf("rendering kustomize/base: %v", err)
	}
	var out []*unstructured.Unstructured
	for _, r := range res.Resources() {
		if k := r.GetKind(); k != "ValidatingAdmissionPolicy" && k != "ValidatingAdmissionPolicyBinding" {
			continue
		}
		if r.GetNamespace() != "" {
			t.Errorf("%s %s is cluster-scoped, but kustomize gives it namespace %s", r.GetKind(), r.GetName(), r.GetNamespace())
		}
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	if len(out) == 0 {
		t.Fatal("kustomize/base installs no ValidatingAdmissionPolicy")
	}
	return out
}

// policyMessages returns the message of every validation of the policies.
func policyMessages(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	var msgs []string
	for _, u := range objs {
		if u.GetKind() != "ValidatingAdmissionPolicy" {
			continue
		}
		vals, _, err := unstructured.NestedSlice(u.Object, "spec", "validations")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			m, _ := v.(map[string]any)["message"].(string)
			if m == "" {
				t.Errorf("policy %s has a validation without a message", u.GetName())
			}
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// installPolicies creates the policies and bindings. The API server
// compiles the expressions on use; with Warn, an expression that does not
// compile or fails warns on every request, so the valid objects of the
// cases, which must get no warning, catch it.
func installPolicies(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		u := u.DeepCopy()
		if err := env.Client.Create(context.Background(), u); err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), u) })
	}
}

type warningCase struct {
	name     string
	resource string
	manifest string
	mutate   []mutation
	want     string // a part of the one warning expected; empty for none
}

func warningCases() []warningCase {
	analysis := func(f ...string) []string { return append([]string{"spec", "analysis"}, f...) }
	metrics, webhooks, alerts := analysis("metrics"), analysis("webhooks"), analysis("alerts")
	c := func(name, want string, m ...mutation) warningCase {
		return warningCase{name: name, resource: "canaries", manifest: validCanary, mutate: m, want: want}
	}
	strategy := func(m ...mutation) []mutation { return append(append([]mutation{}, withoutStepWeight...), m...) }
	return []warningCase{
		c("the valid base", ""),
		c("stepWeight above maxWeight", "stepWeight is above maxWeight", set(int64(60), analysis("stepWeight")...)),
		c("stepWeight of 0", "stepWeight below 1", remove(analysis("maxWeight")...), set(int64(0), analysis("stepWeight")...)),
		c("stepWeight of 150", "stepWeight is above 100", remove(analysis("maxWeight")...), set(int64(150), analysis("stepWeight")...)),
		c("stepWeights out of order", "stepWeights are not in ascending order", strategy(set([]any{int64(50), int64(10), int64(60)}, analysis("stepWeights")...))...),
		c("stepWeights above 100", "stepWeights holds a weight outside 0 to 100", strategy(set([]any{int64(10), int64(150)}, analysis("stepWeights")...))...),
		c("empty stepWeights", "stepWeights is empty", strategy(set([]any{}, analysis("stepWeights")...))...),
		c("stepWeights ending at 0", "stepWeights ends below 1", strategy(set([]any{int64(0)}, analysis("stepWeights")...))...),
		c("maxWeight of 0", "maxWeight below 1", remove(analysis("stepWeight")...), set(int64(10), analysis("iterations")...), set(int64(0), analysis("maxWeight")...)),
		c("maxWeight of 150", "maxWeight is above 100", set(int64(150), analysis("maxWeight")...)),
		c("iterations of 0", "iterations below 1", strategy(set(int64(0), analysis("iterations")...))...),
		c("stepWeightPromotion of 150", "stepWeightPromotion is outside 0 to 100", set(int64(150), analysis("stepWeightPromotion")...)),
		c("negative mirrorWeight", "mirrorWeight is outside 0 to 100", set(int64(-1), analysis("mirrorWeight")...)),
		c("primaryReadyThreshold of 150", "primaryReadyThreshold is outside 0 to 100", set(int64(150), analysis("primaryReadyThreshold")...)),
		c("negative canaryReadyThreshold", "canaryReadyThreshold is outside 0 to 100", set(int64(-1), analysis("canaryReadyThreshold")...)),
		c("progress deadline of 0", "progressDeadlineSeconds below 1", set(int64(0), "spec", "progressDeadlineSeconds")),
		c("interval of 10sec", "spec.analysis.interval is not a duration", set("10sec", analysis("interval")...)),
		c("metric interval of 30sec", "metrics[].interval is not a duration", setInList("30sec", metrics, "interval")),
		c("webhook timeout of 10sec", "webhooks[].timeout is not a duration", setInList("10sec", webhooks, "timeout")),
		c("threshold range upside down", "thresholdRange: min is above max", setInList(int64(100), metrics, "thresholdRange", "max"), setInList(int64(200), metrics, "thresholdRange", "min")),
		c("metric with an empty name", "metrics[].name is empty", setInList("", metrics, "name")),
		c("template with an empty name", "templateRef.name is empty", setInList(map[string]any{"name": ""}, metrics, "templateRef")),
		c("webhook url that is not a URL", "is not an absolute http:// or https:// URL", setInList("not a url", webhooks, "url")),
		c("webhook url with another scheme", "is not an absolute http:// or https:// URL", setInList("ftp://loadtester.test/", webhooks, "url")),
		c("webhook with an empty name", "webhooks[].name is empty", setInList("", webhooks, "name")),
		c("negative webhook retries", "retries below 0 counts as 0", setInList(int64(-1), webhooks, "retries")),
		c("alert with an empty name", "alerts[].name is empty", setInList("", alerts, "name")),
		c("alert with an empty provider name", "providerRef.name is empty", setInList(map[string]any{"name": ""}, alerts, "providerRef")),
		c("empty cookie name", "cookieName is empty", set(map[string]any{"cookieName": "", "primaryCookieName": "p"}, analysis("sessionAffinity")...)),
		c("negative cookie maxAge", "maxAge below 0", set(map[string]any{"cookieName": "c", "maxAge": int64(-1)}, analysis("sessionAffinity")...)),
		c("autoscalerRef with an empty name", "autoscalerRef.name is empty", set(map[string]any{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": ""}, "spec", "autoscalerRef")),
		c("ingressRef with an empty name", "ingressRef.name is empty", set(map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": ""}, "spec", "ingressRef")),
		c("routeRef with an empty name", "routeRef.name is empty", set(map[string]any{"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": ""}, "spec", "routeRef")),
		c("upstreamRef with an empty name", "upstreamRef.name is empty", set(map[string]any{"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": ""}, "spec", "upstreamRef")),
		c("port out of range", "spec.service.port is not a port number", set(int64(70000), "spec", "service", "port")),
		c("simple and an empty consistentHash", "sets both simple and consistentHash",
			set(map[string]any{"simple": "RANDOM", "consistentHash": map[string]any{}}, "spec", "service", "trafficPolicy", "loadBalancer")),

		{name: "the valid MetricTemplate", resource: "metrictemplates", manifest: validTemplate},
		{name: "MetricTemplate without spec", resource: "metrictemplates", manifest: validTemplate, mutate: []mutation{remove("spec")}, want: "the MetricTemplate has no spec"},
		{name: "MetricTemplate with an empty query", resource: "metrictemplates", manifest: validTemplate, mutate: []mutation{set("", "spec", "query")}, want: "spec.query is empty"},
		{name: "MetricTemplate with an empty Secret name", resource: "metrictemplates", manifest: validTemplate,
			mutate: []mutation{set(map[string]any{"name": ""}, "spec", "provider", "secretRef")}, want: "spec.provider.secretRef.name is empty"},
		{name: "the valid AlertProvider", resource: "alertproviders", manifest: validAlertProvider},
		{name: "AlertProvider without spec", resource: "alertproviders", manifest: validAlertProvider, mutate: []mutation{remove("spec")}, want: "the AlertProvider has no spec"},
		{name: "AlertProvider with an empty Secret name", resource: "alertproviders", manifest: validAlertProvider,
			mutate: []mutation{remove("spec", "address"), set(map[string]any{"name": ""}, "spec", "secretRef")}, want: "spec.secretRef.name is empty"},
	}
}

// TestAdmissionWarnings_WarnAndAdmit installs the admission policies that
// kustomize/base ships into the API server with Sluice's CRDs and checks
// that each spec Flagger admits but that is probably a mistake is admitted
// with the one warning that explains it, that a valid object gets none,
// and that every validation of the policies is triggered by some case.
func TestAdmissionWarnings_WarnAndAdmit(t *testing.T) {
	objs := renderedPolicies(t)
	messages := policyMessages(t, objs)
	installPolicies(t, objs)

	log := &warningLog{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = log
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	ctx := context.Background()
	create := func(t *testing.T, wc warningCase) ([]string, error) {
		u := decode(t, wc.manifest)
		for _, m := range wc.mutate {
			if err := m(u); err != nil {
				t.Fatal(err)
			}
		}
		gvr := schema.GroupVersionResource{Group: "flagger.app", Version: "v1beta1", Resource: wc.resource}
		log.take()
		_, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
		return log.take(), err
	}

	cases := warningCases()
	// Policies take effect a moment after they are created: wait for the
	// first warning.
	probe := cases[1]
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := create(t, probe)
		if err != nil {
			t.Fatalf("probe %q rejected: %v", probe.name, err)
		}
		if len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the admission policies sent no warning within a minute")
		}
		time.Sleep(200 * time.Millisecond)
	}

	var seen []string
	for _, wc := range cases {
		t.Run(wc.name, func(t *testing.T) {
			got, err := create(t, wc)
			if err != nil {
				t.Fatalf("rejected, want admitted with a warning: %v", err)
			}
			seen = append(seen, got...)
			t.Logf("warnings: %q", got)
			if wc.want == "" {
				if len(got) > 0 {
					t.Errorf("warnings %q, want none", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], wc.want) {
				t.Errorf("warnings %q, want one, containing %q", got, wc.want)
			}
		})
	}
	for _, m := range messages {
		if !slices.ContainsFunc(seen, func(w string) bool { return strings.Contains(w, m) }) {
			t.Errorf("no case triggers the validation %q", m)
		}
	}
}
