package metrics

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// create creates objects in the envtest API server and deletes them when
// the test ends.
func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// secret is a Secret in namespace tpl.
func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tpl", Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func metricTemplate(ns, name string, p flaggerv1beta1.MetricTemplateProvider, query string) *flaggerv1beta1.MetricTemplate {
	return &flaggerv1beta1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       flaggerv1beta1.MetricTemplateSpec{Provider: p, Query: query},
	}
}

// TestClusterResolver_ResolvesTemplatesAndFailsClosed reads MetricTemplates
// and Secrets from a real API server and runs the resolved queries against
// httptest Prometheus servers that record what they receive.
func TestClusterResolver_ResolvesTemplatesAndFailsClosed(t *testing.T) {
	answer := vectorOf(`{"metric":{},"value":[1,"7"]}`)
	tplServer, defaultServer, canaryServer, secretServer := &recorder{body: answer}, &recorder{body: answer}, &recorder{body: answer}, &recorder{body: answer}
	urls := map[*recorder]string{}
	for _, rec := range []*recorder{tplServer, defaultServer, canaryServer, secretServer} {
		srv := httptest.NewServer(rec)
		t.Cleanup(srv.Close)
		urls[rec] = srv.URL
	}
	prom := func(address string, secretName string) flaggerv1beta1.MetricTemplateProvider {
		p := flaggerv1beta1.MetricTemplateProvider{Type: "prometheus", Address: address}
		if secretName != "" {
			p.SecretRef = &flaggerv1beta1.SecretReference{Name: secretName}
		}
		return p
	}
	create(t, namespace("tpl"), namespace("shared"),
		secret("prom-auth", map[string]string{"token": "t0ken"}),
		secret("half", map[string]string{"username": "admin"}),
		secret("elsewhere", map[string]string{"address": urls[secretServer], "username": "u", "password": "p"}),
		metricTemplate("tpl", "latency", prom(urls[tplServer], "prom-auth"),
			`histogram_quantile(0.99, sum(rate(x{ns="{{ namespace }}", dir="{{ variables.direction }}"}[{{ interval }}])) by (le))`),
		metricTemplate("tpl", "no-address", prom("", ""), `sum(up{namespace="{{ namespace }}"})`),
		metricTemplate("tpl", "gone-secret", prom(urls[tplServer], "gone"), `vector(1)`),
		metricTemplate("tpl", "half-creds", prom(urls[tplServer], "half"), `vector(1)`),
		metricTemplate("tpl", "secret-address", prom("http://ignored.invalid", "elsewhere"), `vector(1)`),
		metricTemplate("tpl", "broken", prom(urls[tplServer], ""), `{{ namespace `),
		secret("dd-half", map[string]string{"datadog_api_key": "a"}),
		metricTemplate("tpl", "dd", flaggerv1beta1.MetricTemplateProvider{Type: "datadog", SecretRef: &flaggerv1beta1.SecretReference{Name: "dd-half"}}, `sum:x{*}`),
		metricTemplate("tpl", "splunk", flaggerv1beta1.MetricTemplateProvider{Type: "splunk"}, `data("traces.count").publish()`),
		metricTemplate("shared", "up", prom(urls[tplServer], ""), `sum(up{namespace="{{ namespace }}"})`),
	)

	cd := canaryOf("istio", "podinfo")
	cd.Namespace = "tpl"
	withServer := cd.DeepCopy()
	withServer.Spec.MetricsServer = urls[canaryServer]
	ref := func(ns, name string) *flaggerv1beta1.CrossNamespaceObjectReference {
		return &flaggerv1beta1.CrossNamespaceObjectReference{Namespace: ns, Name: name}
	}
	open := NewResolver(env.Client, ResolverConfig{MetricsServer: urls[defaultServer]})
	strict := NewResolver(env.Client, ResolverConfig{MetricsServer: urls[defaultServer], NoCrossNamespaceRefs: true})
	for _, tc := range []struct {
		name     string
		resolver *ClusterResolver
		cd       *flaggerv1beta1.Canary
		metric   flaggerv1beta1.CanaryMetric
		query    string
		server   *recorder
		header   string
		err      []string
	}{
		{
			name: "template with variables and a bearer token", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "p99", Interval: "30s", TemplateRef: ref("", "latency"), TemplateVariables: map[string]string{"direction": "inbound"}},
			query:  `histogram_quantile(0.99, sum(rate(x{ns="tpl", dir="inbound"}[30s])) by (le))`, server: tplServer, header: "Bearer t0ken",
		},
		{
			name: "template in another namespace", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "up", TemplateRef: ref("shared", "up")},
			query:  `sum(up{namespace="tpl"})`, server: tplServer,
		},
		{
			name: "prometheus template without address uses the Canary's metricsServer", resolver: open, cd: withServer,
			metric: flaggerv1beta1.CanaryMetric{Name: "up", TemplateRef: ref("", "no-address")},
			query:  `sum(up{namespace="tpl"})`, server: canaryServer,
		},
		{
			name: "prometheus template without address uses -metrics-server", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "up", TemplateRef: ref("", "no-address")},
			query:  `sum(up{namespace="tpl"})`, server: defaultServer,
		},
		{
			name: "the secret's address and basic auth", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "one", TemplateRef: ref("", "secret-address")},
			query:  `vector(1)`, server: secretServer, header: "Basic dTpw",
		},
		{
			name: "builtin metric on the Canary's metricsServer", resolver: open, cd: withServer,
			metric: flaggerv1beta1.CanaryMetric{Name: BuiltinRequestSuccessRate},
			query:  `100 * (sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="tpl", destination_workload=~"podinfo", response_code!~"5.*"}[1m])) or on() vector(0)) / sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="tpl", destination_workload=~"podinfo"}[1m]))`,
			server: canaryServer,
		},
		{
			name: "deprecated inline query on -metrics-server", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "legacy", Interval: "5m", Query: `sum(rate(x{ns="{{ namespace }}"}[{{ interval }}]))`},
			query:  `sum(rate(x{ns="tpl"}[5m]))`, server: defaultServer,
		},
		{
			name: "missing template", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "errors", TemplateRef: ref("", "nope")},
			err:    []string{`metric "errors"`, "MetricTemplate tpl/nope", "does not exist"},
		},
		{
			name: "template in another namespace with -no-cross-namespace-refs", resolver: strict, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "up", TemplateRef: ref("shared", "up")},
			err:    []string{`metric "up"`, "MetricTemplate shared/up", "-no-cross-namespace-refs"},
		},
		{
			name: "missing variable", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "p99", TemplateRef: ref("", "latency")},
			err:    []string{`metric "p99"`, "MetricTemplate tpl/latency", `map has no entry for key "direction"`},
		},
		{
			name: "malformed template", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "b", TemplateRef: ref("", "broken")},
			err:    []string{`metric "b"`, "MetricTemplate tpl/broken", "parsing the query"},
		},
		{
			name: "missing secret", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "g", TemplateRef: ref("", "gone-secret")},
			err:    []string{`metric "g"`, "MetricTemplate tpl/gone-secret", "Secret tpl/gone does not exist"},
		},
		{
			name: "missing secret key", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "h", TemplateRef: ref("", "half-creds")},
			err:    []string{`metric "h"`, "MetricTemplate tpl/half-creds", "username but not password"},
		},
		{
			name: "missing Datadog application key", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "dd", TemplateRef: ref("", "dd")},
			err:    []string{`metric "dd"`, "MetricTemplate tpl/dd", "no datadog_application_key"},
		},
		{
			name: "splunk template without an address", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "s", TemplateRef: ref("", "splunk")},
			err:    []string{`metric "s"`, "MetricTemplate tpl/splunk", "splunk: no address"},
		},
		{
			name: "unknown metric name", resolver: open, cd: cd,
			metric: flaggerv1beta1.CanaryMetric{Name: "error-rate"},
			err:    []string{`metric "error-rate" is neither builtin for provider "istio" nor backed by a templateRef`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, query, err := tc.resolver.Resolve(context.Background(), tc.cd, tc.metric)
			if tc.err != nil {
				if err == nil {
					t.Fatalf("got %q, want an error", query)
				}
				for _, s := range tc.err {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if query != tc.query {
				t.Errorf("query\n got %s\nwant %s", query, tc.query)
			}
			tc.server.mu.Lock()
			before := len(tc.server.headers)
			tc.server.mu.Unlock()
			if v, err := p.RunQuery(context.Background(), query); err != nil || v != 7 {
				t.Fatalf("RunQuery: %v, %v", v, err)
			}
			tc.server.mu.Lock()
			defer tc.server.mu.Unlock()
			if len(tc.server.headers) != before+1 {
				t.Fatalf("the query did not reach the expected server")
			}
			if got := tc.server.headers[before].Get("Authorization"); got != tc.header {
				t.Errorf("Authorization = %q, want %q", got, tc.header)
			}
		})
	}
}

func TestClusterResolver_ReusesProvidersPerConfiguration(t *testing.T) {
	r := NewResolver(env.Client, ResolverConfig{MetricsServer: "http://prometheus.invalid:9090", MaxProviders: 2})
	a := canaryOf("istio", "podinfo")
	b := canaryOf("linkerd", "other")
	c := canaryOf("istio", "podinfo")
	c.Spec.MetricsServer = "http://thanos.invalid:9090"
	m := flaggerv1beta1.CanaryMetric{Name: BuiltinRequestDuration}
	resolve := func(cd *flaggerv1beta1.Canary) Provider {
		t.Helper()
		p, _, err := r.Resolve(context.Background(), cd, m)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pa, pb := resolve(a), resolve(b)
	if pa != pb {
		t.Error("two Canaries on the same metrics server got two clients")
	}
	pc := resolve(c)
	if pc == pa {
		t.Error("different metrics servers share a client")
	}
	if n := r.cache.len(); n != 2 {
		t.Errorf("cache holds %d providers, want 2", n)
	}
	c.Spec.MetricsServer = "http://mimir.invalid:9090"
	resolve(c)
	if n := r.cache.len(); n != 2 {
		t.Errorf("cache holds %d providers beyond MaxProviders 2", n)
	}
	if resolve(a) == pa {
		t.Error("the least recently used client was kept")
	}
}
