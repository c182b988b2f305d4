package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// externalMetricsPrefix is where client-go's external metrics client reads.
const externalMetricsPrefix = "/apis/external.metrics.k8s.io/v1beta1"

// fakeExternalMetrics serves the external metrics API as an adapter does:
// the discovery document of external.metrics.k8s.io/v1beta1 and, per
// namespace and metric, an ExternalMetricValueList. It records the
// Authorization header and the label selector of each request.
type fakeExternalMetrics struct {
	t *testing.T
	// values maps namespace/metric to the items' values, as quantities.
	values map[string][]string
	// status, when set, answers every request.
	status int

	mu        sync.Mutex
	auths     []string
	selectors []string
}

func (f *fakeExternalMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	f.selectors = append(f.selectors, r.URL.Query().Get("labelSelector"))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if f.status != 0 {
		w.WriteHeader(f.status)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
			"message": "the server could not find the requested resource", "reason": "NotFound", "code": f.status})
		return
	}
	if r.URL.Path == externalMetricsPrefix {
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "external.metrics.k8s.io/v1beta1",
			"resources": []any{map[string]any{"name": "externalmetrics", "singularName": "", "namespaced": true, "kind": "ExternalMetricValueList", "verbs": []string{"get"}}}})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, externalMetricsPrefix+"/namespaces/")
	ns, metric, _ := strings.Cut(rest, "/")
	values, known := f.values[ns+"/"+metric]
	if !ok || !known {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
			"message": `unable to fetch metrics from external metrics API: no metric "` + metric + `"`, "reason": "NotFound", "code": 404})
		return
	}
	items := make([]any, len(values))
	for i, v := range values {
		items[i] = map[string]any{"metricName": metric, "metricLabels": map[string]string{"app": "podinfo"}, "timestamp": "2026-05-01T12:00:00Z", "value": v}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1", "metadata": map[string]any{}, "items": items})
}

// requests returns the Authorization headers and selectors received.
func (f *fakeExternalMetrics) requests() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auths...), append([]string(nil), f.selectors...)
}

func TestExternalMetrics_ReadsTheFirstValueThroughClientGo(t *testing.T) {
	fake := &fakeExternalMetrics{t: t, values: map[string][]string{
		"shop/http_requests_per_second": {"250m"},
		"default/queue_depth":           {"42"},
		"shop/per_pod_latency":          {"120", "480"},
		"shop/empty":                    {},
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	sluice := &rest.Config{Host: srv.URL, BearerToken: "sluice-service-account"}
	cases := []struct {
		name, query, selector string
		want                  float64
		note                  string
		err                   []string
	}{
		{"a namespaced metric with a selector", "shop/http_requests_per_second?labelSelector=app%3Dpodinfo%2Ctier%3Dweb", "app=podinfo,tier=web", 0.25, "", nil},
		{"the default namespace", "queue_depth", "", 42, "", nil},
		{"a leading slash", "/queue_depth", "", 42, "", nil},
		{"several values: the first, as Flagger", "shop/per_pod_latency", "", 120, "returned 2 values of per_pod_latency and the first one was compared", nil},
		{"no value", "shop/empty", "", 0, "", []string{ErrNoValues.Error(), "empty", "shop"}},
		{"an unknown metric", "shop/nope", "", 0, "", []string{"externalmetrics at http://127.0.0.1", `no metric "nope"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewExternalMetrics(ProviderConfig{Type: "externalmetrics", Rest: sluice})
			if err != nil {
				t.Fatal(err)
			}
			got, note, err := p.RunQueryNoted(context.Background(), " "+tc.query+"\n")
			checkQuery(t, got, err, tc.want, tc.err)
			if note != "" || tc.note != "" {
				if !strings.Contains(note, tc.note) || tc.note == "" {
					t.Errorf("note %q, want one with %q", note, tc.note)
				}
			}
			auths, selectors := fake.requests()
			if last := auths[len(auths)-1]; last != "Bearer sluice-service-account" {
				t.Errorf("Authorization %q, want Sluice's own token", last)
			}
			if last := selectors[len(selectors)-1]; last != tc.selector {
				t.Errorf("labelSelector %q, want %q", last, tc.selector)
			}
		})
	}
}

// TestExternalMetrics_SendsOnlyTheSecretsTokenToAnotherServer checks whose
// credentials go where: Sluice's own to its API server, the Secret's token
// instead when the Secret has one, and never Sluice's own to a server a
// MetricTemplate names.
func TestExternalMetrics_SendsOnlyTheSecretsTokenToAnotherServer(t *testing.T) {
	cluster := &fakeExternalMetrics{t: t, values: map[string][]string{"default/m": {"1"}}}
	clusterSrv := httptest.NewServer(cluster)
	defer clusterSrv.Close()
	other := &fakeExternalMetrics{t: t, values: map[string][]string{"default/m": {"2"}}}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	sluice := &rest.Config{Host: clusterSrv.URL, BearerToken: "sluice-service-account"}
	for _, tc := range []struct {
		name    string
		cfg     ProviderConfig
		fake    *fakeExternalMetrics
		want    float64
		wantTok string
	}{
		{"the cluster with Sluice's identity", ProviderConfig{Rest: sluice}, cluster, 1, "Bearer sluice-service-account"},
		{"the cluster named by its address", ProviderConfig{Rest: sluice, Address: clusterSrv.URL + "/"}, cluster, 1, "Bearer sluice-service-account"},
		{"the cluster with the Secret's token", ProviderConfig{Rest: sluice, Credentials: map[string]string{"token": "team-token"}}, cluster, 1, "Bearer team-token"},
		{"another server with the Secret's token", ProviderConfig{Rest: sluice, Address: otherSrv.URL, Credentials: map[string]string{"token": "team-token"}}, other, 2, "Bearer team-token"},
		{"another server without a token", ProviderConfig{Rest: sluice, Address: otherSrv.URL}, other, 2, ""},
		{"no connection of Sluice's own", ProviderConfig{Address: otherSrv.URL, Credentials: map[string]string{"token": "team-token"}}, other, 2, "Bearer team-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Type = "externalmetrics"
			p, err := NewExternalMetrics(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.RunQuery(context.Background(), "m")
			checkQuery(t, got, err, tc.want, nil)
			auths, _ := tc.fake.requests()
			if last := auths[len(auths)-1]; last != tc.wantTok {
				t.Errorf("Authorization %q, want %q", last, tc.wantTok)
			}
		})
	}
	if _, err := NewExternalMetrics(ProviderConfig{}); err == nil || !strings.Contains(err.Error(), "no address") {
		t.Errorf("no connection at all: %v", err)
	}
}

func TestExternalMetrics_IsOnlineWhenTheAPIIsServed(t *testing.T) {
	fake := &fakeExternalMetrics{t: t}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	p, err := newProvider(ProviderConfig{Type: "externalmetrics", Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if KindOf(p) != "externalmetrics" {
		t.Errorf("kind %s", KindOf(p))
	}
	if ok, err := p.IsOnline(context.Background()); !ok || err != nil {
		t.Errorf("IsOnline: %v, %v", ok, err)
	}
	fake.status = http.StatusNotFound
	if ok, err := p.IsOnline(context.Background()); ok || err == nil || !strings.Contains(err.Error(), "is an external metrics adapter installed") {
		t.Errorf("IsOnline without the API: %v, %v", ok, err)
	}
}

func TestExternalMetrics_RefusesMalformedQueries(t *testing.T) {
	for _, tc := range []struct{ query, err string }{
		{"a/b/c", "too many slashes"},
		{"shop/", "names no metric"},
		{"", "names no metric"},
		{"shop/m?labelSelector=app%3D%3D%3Dx%21", "labelSelector"},
		{"shop/m?selector=app%3Dx", `the parameter "selector"`},
		{"sh op/m", "white space"},
	} {
		if _, err := parseExternalMetricsQuery(tc.query); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want an error with %q", tc.query, err, tc.err)
		}
	}
}

func TestExternalMetrics_TemplatesResolveAndKeepToTheirNamespace(t *testing.T) {
	fake := &fakeExternalMetrics{t: t, values: map[string][]string{"ext/queue_depth": {"7"}, "other/queue_depth": {"9"}}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	create(t, namespace("ext"),
		metricTemplate("ext", "queue", flaggerv1beta1.MetricTemplateProvider{Type: "externalmetrics"}, "{{ namespace }}/queue_depth?labelSelector=app%3D{{ target }}"),
		metricTemplate("ext", "elsewhere", flaggerv1beta1.MetricTemplateProvider{Type: "externalmetrics"}, "other/queue_depth"),
	)
	cd := canaryOf("istio", "podinfo")
	cd.Namespace = "ext"
	sluice := &rest.Config{Host: srv.URL}
	open := NewResolver(env.Client, ResolverConfig{Rest: sluice})
	strict := NewResolver(env.Client, ResolverConfig{Rest: sluice, NoCrossNamespaceRefs: true})
	ref := &flaggerv1beta1.CrossNamespaceObjectReference{Name: "queue"}
	p, query, err := open.Resolve(context.Background(), cd, flaggerv1beta1.CanaryMetric{Name: "queue", TemplateRef: ref})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.RunQuery(context.Background(), query); err != nil || v != 7 {
		t.Errorf("RunQuery(%q) = %v, %v; want 7", query, v, err)
	}
	if _, sel := fake.requests(); sel[len(sel)-1] != "app=podinfo" {
		t.Errorf("labelSelector %q", sel[len(sel)-1])
	}
	if _, _, err := strict.Resolve(context.Background(), cd, flaggerv1beta1.CanaryMetric{Name: "q", TemplateRef: &flaggerv1beta1.CrossNamespaceObjectReference{Name: "elsewhere"}}); err == nil ||
		!strings.Contains(err.Error(), "reads namespace other, not the Canary's ext, which -no-cross-namespace-refs forbids") {
		t.Errorf("strict resolver: %v", err)
	}
}
