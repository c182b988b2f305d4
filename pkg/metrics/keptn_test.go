package metrics

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func TestParseKeptnQuery_ReadsFlaggersTwoForms(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  keptnQuery
		err   string
	}{
		{query: "keptnmetric/shop/response-time", want: keptnQuery{namespace: "shop", name: "response-time"}},
		{query: "  KeptnMetrics/Shop/Response-Time\n", want: keptnQuery{namespace: "shop", name: "response-time"}},
		// Flagger's documented example: the parts after the name only apply to analyses.
		{query: "keptnmetric/my-namespace/response-time/2m/reporter=destination", want: keptnQuery{namespace: "my-namespace", name: "response-time"}},
		{query: "analysis/shop/slo", want: keptnQuery{analysis: true, namespace: "shop", name: "slo", timeframe: "1m", args: map[string]string{}}},
		{query: "analyses/shop/slo/5m/foo=bar;bar=foo", want: keptnQuery{analysis: true, namespace: "shop", name: "slo", timeframe: "5m",
			args: map[string]string{"foo": "bar", "bar": "foo"}}},
		{query: "analysis/shop/slo//Workload=PodInfo;", want: keptnQuery{analysis: true, namespace: "shop", name: "slo", timeframe: "1m",
			args: map[string]string{"workload": "podinfo"}}},
		{query: "analysis/shop/slo/1h30m/a=", want: keptnQuery{analysis: true, namespace: "shop", name: "slo", timeframe: "1h30m", args: map[string]string{"a": ""}}},
		{query: "keptnmetric/shop", err: "is not keptnmetric/<namespace>/<name> or analysis/"},
		{query: "", err: "is not keptnmetric/"},
		{query: "metric/shop/x", err: `the query starts with "metric"`},
		{query: "keptnmetric//x", err: "has no namespace"},
		{query: "analysis/shop/", err: "has no name"},
		{query: "analysis/shop/slo/soon", err: `the timeframe "soon" of the query is not a positive duration`},
		{query: "analysis/shop/slo/-5m", err: "not a positive duration"},
		{query: "analysis/shop/slo/5m/foo", err: `the argument "foo" of the query is not <key>=<value>`},
		{query: "analysis/shop/slo/5m/=bar", err: `the argument "=bar"`},
		{query: "analysis/shop/slo/5m/a=b=c", err: `the argument "a=b=c"`},
		{query: "analysis/shop/slo/5m/a=b/c", err: "has 6 parts"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			got, err := parseKeptnQuery(tc.query)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "keptn: ") {
					t.Errorf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// keptnMetric creates a KeptnMetric with the given status (none when nil)
// in the API server, as Keptn's metrics operator would leave it.
func keptnMetric(t *testing.T, ns, name string, status map[string]any) {
	t.Helper()
	ctx := context.Background()
	m := keptnObject("KeptnMetric")
	m.SetNamespace(ns)
	m.SetName(name)
	m.Object["spec"] = map[string]any{"provider": map[string]any{"name": "prometheus"}, "query": "sum(up)", "fetchIntervalSeconds": int64(10)}
	if err := env.Client.Create(ctx, m); err != nil {
		t.Fatalf("creating KeptnMetric %s: %v", name, err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), m) })
	if status != nil {
		m.Object["status"] = status
		if err := env.Client.Status().Update(ctx, m); err != nil {
			t.Fatalf("setting the status of KeptnMetric %s: %v", name, err)
		}
	}
}

func TestKeptn_ReadsTheValueOfAKeptnMetric(t *testing.T) {
	create(t, namespace("keptn-metrics"))
	keptnMetric(t, "keptn-metrics", "response-time", map[string]any{"value": "0.25", "rawValue": "MC4yNQ==", "lastUpdated": "2024-05-01T10:00:00Z"})
	keptnMetric(t, "keptn-metrics", "pending", nil)
	keptnMetric(t, "keptn-metrics", "failing", map[string]any{"value": "", "errMsg": "client_error: server returned 503"})
	keptnMetric(t, "keptn-metrics", "words", map[string]any{"value": "n/a"})
	keptnMetric(t, "keptn-metrics", "nan", map[string]any{"value": "NaN"})

	p, err := NewKeptn(ProviderConfig{Kube: env.Client})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		want  float64
		err   []string
	}{
		{query: "keptnmetric/keptn-metrics/response-time", want: 0.25},
		{query: "KeptnMetric/Keptn-Metrics/Response-Time/2m/reporter=destination\n", want: 0.25},
		{query: "keptnmetric/keptn-metrics/missing", err: []string{"keptn: KeptnMetric keptn-metrics/missing does not exist"}},
		{query: "keptnmetric/elsewhere/response-time", err: []string{"KeptnMetric elsewhere/response-time does not exist"}},
		{query: "keptnmetric/keptn-metrics/pending", err: []string{ErrNoValues.Error(), "KeptnMetric keptn-metrics/pending has no value yet"}},
		{query: "keptnmetric/keptn-metrics/failing", err: []string{ErrNoValues.Error(), "Keptn reports: client_error: server returned 503"}},
		{query: "keptnmetric/keptn-metrics/words", err: []string{`the value "n/a" of KeptnMetric keptn-metrics/words is not a number`}},
		{query: "keptnmetric/keptn-metrics/nan", err: []string{ErrNaN.Error()}},
		{query: "prometheus/keptn-metrics/x", err: []string{`the query starts with "prometheus"`}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			got, err := p.RunQuery(context.Background(), tc.query)
			checkQuery(t, got, err, tc.want, tc.err)
		})
	}
	if ok, err := p.IsOnline(context.Background()); !ok || err != nil {
		t.Errorf("IsOnline: %v, %v", ok, err)
	}
}

// playKeptn acts as Keptn's metrics operator for one Analysis: it waits for
// the Analysis of definition to appear in ns, sends its spec and labels on
// seen, and, when status is not nil, completes it with that status. It
// returns when done or when ctx ends; problems go to errs.
func playKeptn(ctx context.Context, ns, definition string, status map[string]any, seen chan<- *unstructured.Unstructured, errs chan<- error) {
	for {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(keptnGroupVersion.WithKind("AnalysisList"))
		if err := env.Client.List(ctx, list, client.InNamespace(ns)); err != nil && ctx.Err() == nil {
			errs <- fmt.Errorf("listing analyses: %w", err)
			return
		}
		for i := range list.Items {
			a := &list.Items[i]
			name, _, _ := unstructured.NestedString(a.Object, "spec", "analysisDefinition", "name")
			if name != definition {
				continue
			}
			seen <- a.DeepCopy()
			if status == nil {
				return
			}
			a.Object["status"] = status
			if err := env.Client.Status().Update(ctx, a); err != nil {
				errs <- fmt.Errorf("completing analysis %s: %w", a.GetName(), err)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestKeptn_RunsAnAnalysisAndReturnsItsVerdict(t *testing.T) {
	const ns = "keptn-analyses"
	create(t, namespace(ns))
	for _, tc := range []struct {
		name       string
		query      string
		definition string
		status     map[string]any // what "Keptn" writes; nil: it never completes
		wait       time.Duration
		spec       map[string]any
		want       float64
		err        []string
	}{
		{
			name: "passed", query: "analysis/keptn-analyses/slo-passed/5m/foo=bar;Bar=Foo", definition: "slo-passed",
			status: map[string]any{"state": "Completed", "pass": true, "raw": `{"objectiveResults":[]}`},
			spec: map[string]any{"analysisDefinition": map[string]any{"name": "slo-passed"}, "timeframe": map[string]any{"recent": "5m"},
				"args": map[string]any{"foo": "bar", "bar": "foo"}},
			want: 1,
		},
		{
			name: "failed, without pass as Keptn writes it", query: "analysis/keptn-analyses/slo-failed", definition: "slo-failed",
			status: map[string]any{"state": "Completed", "warning": true},
			spec:   map[string]any{"analysisDefinition": map[string]any{"name": "slo-failed"}, "timeframe": map[string]any{"recent": "1m"}},
			want:   0,
		},
		{
			name: "failed, with pass false", query: "analysis/keptn-analyses/slo-false/2m", definition: "slo-false",
			status: map[string]any{"state": "Completed", "pass": false},
			spec:   map[string]any{"analysisDefinition": map[string]any{"name": "slo-false"}, "timeframe": map[string]any{"recent": "2m"}},
			want:   0,
		},
		{
			name: "still progressing when the wait ends", query: "analysis/keptn-analyses/slo-slow/1m", definition: "slo-slow",
			status: map[string]any{"state": "Progressing"}, wait: 300 * time.Millisecond,
			spec: map[string]any{"analysisDefinition": map[string]any{"name": "slo-slow"}, "timeframe": map[string]any{"recent": "1m"}},
			err: []string{"keptn: Analysis keptn-analyses/slo-slow-", "of AnalysisDefinition keptn-analyses/slo-slow did not complete within 300ms (Progressing)",
				"metrics operator running"},
		},
		{
			name: "never picked up", query: "analysis/keptn-analyses/slo-ignored", definition: "slo-ignored", wait: 300 * time.Millisecond,
			spec: map[string]any{"analysisDefinition": map[string]any{"name": "slo-ignored"}, "timeframe": map[string]any{"recent": "1m"}},
			err:  []string{"did not complete within 300ms (no state)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewKeptn(ProviderConfig{Kube: env.Client})
			if err != nil {
				t.Fatal(err)
			}
			p.poll = 50 * time.Millisecond
			p.wait = 30 * time.Second
			if tc.wait > 0 {
				p.wait = tc.wait
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			seen := make(chan *unstructured.Unstructured, 1)
			errs := make(chan error, 1)
			go playKeptn(ctx, ns, tc.definition, tc.status, seen, errs)

			got, err := p.RunQuery(ctx, tc.query)
			switch {
			case tc.err == nil && (err != nil || got != tc.want):
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			case tc.err != nil && err == nil:
				t.Errorf("got %v, want an error", got)
			case tc.err != nil:
				for _, s := range tc.err {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
			}
			select {
			case e := <-errs:
				t.Fatal(e)
			case a := <-seen:
				if !reflect.DeepEqual(a.Object["spec"], tc.spec) {
					t.Errorf("spec %v, want %v", a.Object["spec"], tc.spec)
				}
				if !strings.HasPrefix(a.GetName(), tc.definition+"-") || a.GetLabels()["app.kubernetes.io/managed-by"] != "sluice" {
					t.Errorf("name %s, labels %v", a.GetName(), a.GetLabels())
				}
			default:
				t.Error("no Analysis was created")
			}
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(keptnGroupVersion.WithKind("AnalysisList"))
			if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 0 {
				t.Errorf("%d Analyses left behind, want them deleted", len(list.Items))
			}
		})
	}
}

func TestKeptn_ResolvesTemplatesWithTheResolversClient(t *testing.T) {
	create(t, namespace("keptn-tpl"))
	keptnMetric(t, "keptn-tpl", "errors", map[string]any{"value": "3"})
	create(t,
		metricTemplate("keptn-tpl", "keptn-errors", flaggerv1beta1.MetricTemplateProvider{Type: "keptn"}, "keptnmetric/{{ namespace }}/errors"),
		metricTemplate("keptn-tpl", "keptn-elsewhere", flaggerv1beta1.MetricTemplateProvider{Type: "keptn"}, "keptnmetric/keptn-metrics/response-time"),
	)
	cd := canaryOf("istio", "podinfo")
	cd.Namespace = "keptn-tpl"
	m := func(tpl string) flaggerv1beta1.CanaryMetric {
		return flaggerv1beta1.CanaryMetric{Name: "errors", Interval: "1m", TemplateRef: &flaggerv1beta1.CrossNamespaceObjectReference{Name: tpl}}
	}

	r := NewResolver(env.Client, ResolverConfig{Kube: env.Client})
	p, query, err := r.Resolve(context.Background(), cd, m("keptn-errors"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.RunQuery(context.Background(), query); err != nil || v != 3 {
		t.Errorf("RunQuery(%s): %v, %v; want 3", query, v, err)
	}
	if KindOf(p) != "keptn" {
		t.Errorf("kind %s", KindOf(p))
	}
	other := m("keptn-errors")
	other.Interval = "5m"
	if again, _, _ := r.Resolve(context.Background(), cd, other); again != p {
		t.Error("another interval built another keptn provider")
	}

	strict := NewResolver(env.Client, ResolverConfig{Kube: env.Client, NoCrossNamespaceRefs: true})
	if _, _, err := strict.Resolve(context.Background(), cd, m("keptn-errors")); err != nil {
		t.Errorf("a query into the Canary's namespace with -no-cross-namespace-refs: %v", err)
	}
	if _, _, err := strict.Resolve(context.Background(), cd, m("keptn-elsewhere")); err == nil ||
		!strings.Contains(err.Error(), "its keptn query reads namespace keptn-metrics, not the Canary's keptn-tpl, which -no-cross-namespace-refs forbids") {
		t.Errorf("a query into another namespace with -no-cross-namespace-refs: %v", err)
	}

	noClient := NewResolver(env.Client, ResolverConfig{})
	if _, _, err := noClient.Resolve(context.Background(), cd, m("keptn-errors")); err == nil ||
		!strings.Contains(err.Error(), `metric "errors", MetricTemplate keptn-tpl/keptn-errors: keptn: no Kubernetes client`) {
		t.Errorf("without a client: %v", err)
	}
}

func TestKeptn_ExplainsAPIErrors(t *testing.T) {
	gr := schema.GroupResource{Group: "metrics.keptn.sh", Resource: "keptnmetrics"}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"not found", apierrors.NewNotFound(gr, "x"), "keptn: KeptnMetric ns/x does not exist"},
		{"Keptn not installed", &apimeta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "metrics.keptn.sh", Kind: "KeptnMetric"}, SearchedVersions: []string{"v1beta1"}},
			"keptn: reading KeptnMetric ns/x: Keptn's API metrics.keptn.sh/v1beta1 is not installed in the cluster"},
		{"no permission", apierrors.NewForbidden(gr, "x", errors.New("RBAC: access denied")),
			"keptn: reading KeptnMetric ns/x: Sluice's service account may not do this (check its ClusterRole)"},
		{"anything else", errors.New("connection refused"), "keptn: reading KeptnMetric ns/x: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := explainKeptnError(tc.err, "reading", "KeptnMetric ns/x"); !strings.HasPrefix(got.Error(), tc.want) {
				t.Errorf("got %q, want it to start with %q", got, tc.want)
			}
		})
	}
	p, err := NewKeptn(ProviderConfig{Kube: env.Client})
	if err != nil {
		t.Fatal(err)
	}
	p.wait = 100 * time.Millisecond
	if _, err := p.RunQuery(context.Background(), "analysis/no-such-namespace/slo"); err == nil ||
		!strings.Contains(err.Error(), "keptn: creating an Analysis of AnalysisDefinition no-such-namespace/slo: the namespace no-such-namespace does not exist") {
		t.Errorf("an analysis in a missing namespace: %v", err)
	}
}
