package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/metrics/promtest"
)

// shop is the namespace of the Canaries of the builtin-query tests.
const shop = "shop"

// meshTraffic is the traffic that the real Prometheus scrapes, for every
// mesh in namespace shop:
//   - podinfo: 95 fast successes and 5 slow errors per tick: a success
//     rate of 95% and a P99 of 220 ms (the 99th request falls 80% of the
//     way into the (100 ms, 250 ms] bucket);
//   - podinfo-primary: 50% errors, all slow (P99 248.5 ms), which the
//     canary's queries must not count;
//   - broken: 100% errors, 19 fast and 1 slow per tick (P99 220 ms);
//   - idle: a series that receives no requests (rates of zero);
//   - ghost: nothing at all.
//
// Istio also reports podinfo's requests from the client side
// (reporter="source"), all errors, which must not count either.
func meshTraffic() *promtest.Traffic {
	tr := promtest.NewTraffic()
	for _, m := range promtest.Meshes {
		tr.Set(m, m.Labels(shop, "podinfo"), promtest.Series{Code: m.OK, Fast: 95}, promtest.Series{Code: m.Error, Slow: 5})
		tr.Set(m, m.Labels(shop, "podinfo-primary"), promtest.Series{Code: m.OK, Slow: 50}, promtest.Series{Code: m.Error, Slow: 50})
		tr.Set(m, m.Labels(shop, "broken"), promtest.Series{Code: m.Error, Fast: 19, Slow: 1})
		tr.Set(m, m.Labels(shop, "idle"), promtest.Series{Code: m.OK})
	}
	istio, _ := promtest.MeshByName("istio")
	source := istio.Labels(shop, "podinfo")
	source["reporter"] = "source"
	tr.Set(istio, source, promtest.Series{Code: istio.Error, Slow: 100})
	return tr
}

// canaryOf returns a Canary of target with the given traffic provider,
// whose ingress and route carry the target's name.
func canaryOf(provider, target string) *flaggerv1beta1.Canary {
	return &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: shop, Name: target},
		Spec: flaggerv1beta1.CanarySpec{
			Provider:   provider,
			TargetRef:  flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			IngressRef: &flaggerv1beta1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: target},
			RouteRef:   &flaggerv1beta1.RouteReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: target},
		},
	}
}

// TestBuiltinMetrics_MeasureOnlyTheCanaryOnARealPrometheus runs the
// builtin queries of every provider against Debian's Prometheus scraping
// mesh-shaped metrics with known rates. The exporter's counters advance
// together, so the expected values are exact up to floating point: the
// tolerance is 0.01 percentage points and 0.1 ms.
func TestBuiltinMetrics_MeasureOnlyTheCanaryOnARealPrometheus(t *testing.T) {
	srv := startPrometheus(t)
	r := NewResolver(env.Client, ResolverConfig{MetricsServer: srv.URL})
	providers := []string{
		"istio", "linkerd", "nginx", "contour", "gloo", "appmesh", "appmesh:v1beta2", "kuma", "osm",
		"traefik", "apisix", "kubernetes", "gatewayapi:v1", "gatewayapi:v1beta1",
	}
	cases := []struct {
		target, metric string
		want           float64
		err            error
	}{
		{"podinfo", BuiltinRequestSuccessRate, 95, nil},
		{"podinfo", BuiltinRequestDuration, 220, nil},
		{"broken", BuiltinRequestSuccessRate, 0, nil},
		{"broken", BuiltinRequestDuration, 220, nil},
		{"idle", BuiltinRequestSuccessRate, 0, ErrNaN},
		{"idle", BuiltinRequestDuration, 0, ErrNaN},
		{"ghost", BuiltinRequestSuccessRate, 0, ErrNoValues},
		{"ghost", BuiltinRequestDuration, 0, ErrNoValues},
	}
	for _, provider := range providers {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%s/%s", provider, tc.target, tc.metric), func(t *testing.T) {
				m := flaggerv1beta1.CanaryMetric{Name: tc.metric, Interval: "1m"}
				p, query, err := r.Resolve(context.Background(), canaryOf(provider, tc.target), m)
				if err != nil {
					t.Fatalf("resolving: %v", err)
				}
				got, err := p.RunQuery(context.Background(), query)
				switch {
				case tc.err != nil:
					// ErrNaN matches ErrNoValues, not the reverse: check
					// that the error is the one expected and no other.
					if !errors.Is(err, tc.err) || (tc.err == ErrNoValues && errors.Is(err, ErrNaN)) { //nolint:errorlint // telling the two apart
						t.Errorf("got %v, %v; want the error %q\nquery: %s", got, err, tc.err, query)
					}
				case err != nil:
					t.Errorf("got the error %v; want %g\nquery: %s", err, tc.want, query)
				case math.Abs(got-tc.want) > tolerance(tc.metric):
					t.Errorf("got %g; want %g ± %g\nquery: %s", got, tc.want, tolerance(tc.metric), query)
				}
			})
		}
	}
}

// tolerance is how far a builtin metric may be from the expected value.
func tolerance(metric string) float64 {
	if metric == BuiltinRequestDuration {
		return 0.1
	}
	return 0.01
}

// TestPrometheus_ClassifiesRealAnswers checks the Prometheus provider
// against what the real server answers.
func TestPrometheus_ClassifiesRealAnswers(t *testing.T) {
	srv := startPrometheus(t)
	p, err := NewPrometheus(ProviderConfig{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.IsOnline(context.Background()); !ok || err != nil {
		t.Errorf("IsOnline: %v, %v; want true", ok, err)
	}
	for _, tc := range []struct {
		name, query string
		want        float64
		err         string
	}{
		{"one series", "vector(1)", 1, ""},
		{"scalar", "scalar(vector(2.5))", 2.5, ""},
		{"number", "3", 3, ""},
		{"empty vector", "no_such_metric", 0, ErrNoValues.Error()},
		{"NaN", "0/0", 0, "NaN"},
		{"one series per job: the last one, as Flagger", "up", 1, ""},
		{"range vector", "up[1m]", 0, "range vector"},
		{"string", `"text"`, 0, "string"},
		{"syntax error", "sum(", 0, "bad_data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.RunQuery(context.Background(), tc.query)
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Errorf("got %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("got %v, %v; want an error containing %q", got, err, tc.err)
			}
		})
	}
}

// TestAnalyze_TakesTheLastOfSeveralPrometheusSeriesAsFlaggerDoes runs
// inline queries that answer two series on the real Prometheus: the last
// series of the answer is compared, as Flagger does, and the check's
// message records that two came back; a range vector stays an error.
func TestAnalyze_TakesTheLastOfSeveralPrometheusSeriesAsFlaggerDoes(t *testing.T) {
	srv := startPrometheus(t)
	two := `vector(1) or label_replace(vector(2), "replica", "b", "", "")`
	for _, tc := range []struct {
		name, query string
		value       float64
		passed      bool
		msg         []string
	}{
		{"ascending: the last is 2", "sort(" + two + ")", 2, false, []string{"2 is above the maximum 1.5", `returned 2 series and the last one, {replica="b"}, was compared`}},
		{"descending: the last is 1", "sort_desc(" + two + ")", 1, true, []string{"returned 2 series and the last one, {}, was compared", "aggregate them"}},
		{"a range vector", "vector(1)[1m:]", 0, false, []string{"range vector"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cd := canaryOf("istio", "podinfo")
			cd.Spec.Analysis = &flaggerv1beta1.CanaryAnalysis{Metrics: []flaggerv1beta1.CanaryMetric{{
				Name: "replicas", Query: tc.query, ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(1.5)},
			}}}
			a := &Analyzer{Resolver: NewResolver(env.Client, ResolverConfig{MetricsServer: srv.URL})}
			r := a.Analyze(context.Background(), cd)[0]
			if r.Passed != tc.passed || (tc.value != 0 && (r.Value == nil || *r.Value != tc.value)) {
				t.Errorf("passed=%v value=%v, want passed=%v value=%v (%s)", r.Passed, deref(r.Value), tc.passed, tc.value, r.Message)
			}
			for _, s := range tc.msg {
				if !strings.Contains(r.Message, s) {
					t.Errorf("message %q does not contain %q", r.Message, s)
				}
			}
		})
	}
}
