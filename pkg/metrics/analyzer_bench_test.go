package metrics

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// benchProvider answers every query with one value, in process, and
// counts the queries it is asked.
type benchProvider struct {
	v       float64
	queries int
}

func (p *benchProvider) RunQuery(context.Context, string) (float64, error) {
	p.queries++
	return p.v, nil
}

func (p *benchProvider) IsOnline(context.Context) (bool, error) { return true, nil }

// benchQueries resolves a metric to the query its name maps to, on one
// provider.
type benchQueries struct {
	p       *benchProvider
	queries map[string]string
}

func (r benchQueries) Resolve(_ context.Context, _ *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric) (Provider, string, error) {
	return r.p, r.queries[m.Name], nil
}

// benchBackend resolves a metric with the production ClusterResolver
// (template rendering and the provider cache included) but answers its
// queries with p instead of sending them to the metrics server.
type benchBackend struct {
	cluster *ClusterResolver
	p       *benchProvider
}

func (r benchBackend) Resolve(ctx context.Context, cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric) (Provider, string, error) {
	_, query, err := r.cluster.Resolve(ctx, cd, m)
	return r.p, query, err
}

// BenchmarkAnalyze measures the metric checks of one analysis step over an
// in-process provider, so that only Sluice's own work is measured: resolving
// each metric, rendering its query, running the queries a step needs once
// and judging each metric against its range. queries/op is how many
// queries reach the provider per step; metrics that render the same query
// on the same provider share one.
func BenchmarkAnalyze(b *testing.B) {
	rate := &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}
	latency := &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}
	canary := func(metrics ...flaggerv1beta1.CanaryMetric) *flaggerv1beta1.Canary {
		return &flaggerv1beta1.Canary{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "bench"},
			Spec: flaggerv1beta1.CanarySpec{
				Provider:  flaggerv1beta1.ProviderIstio,
				TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
				Service:   flaggerv1beta1.CanaryService{Port: 9898},
				Analysis:  &flaggerv1beta1.CanaryAnalysis{Interval: "1m", Threshold: 5, Iterations: ptr.To[int32](10), Metrics: metrics},
			},
		}
	}
	// Four metrics, two of which judge the same query: a strict range that
	// counts and a dry-run one that only reports.
	fourMetrics := canary(
		flaggerv1beta1.CanaryMetric{Name: BuiltinRequestSuccessRate, Interval: "1m", ThresholdRange: rate},
		flaggerv1beta1.CanaryMetric{Name: BuiltinRequestDuration, Interval: "1m", ThresholdRange: latency},
		flaggerv1beta1.CanaryMetric{Name: "error-budget-burn", Interval: "1m", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(2.0)},
			Query: `sum(rate(istio_requests_total{destination_workload="podinfo",response_code=~"5.*"}[1m])) / sum(rate(istio_requests_total{destination_workload="podinfo"}[1m])) / 0.001`},
		flaggerv1beta1.CanaryMetric{Name: "request-success-rate-strict", Interval: "1m", DryRun: true,
			ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.9)}},
	)
	inProcess := map[string]string{
		BuiltinRequestSuccessRate:     "success-rate",
		BuiltinRequestDuration:        "duration",
		"error-budget-burn":           "burn",
		"request-success-rate-strict": "success-rate",
	}
	cluster := NewResolver(nil, ResolverConfig{MetricsServer: "http://prometheus.invalid:9090"})
	// In the cluster case the strict metric names the builtin itself, so
	// that it renders the same query as request-success-rate.
	builtinTwice := fourMetrics.DeepCopy()
	builtinTwice.Spec.Analysis.Metrics[3].Name = BuiltinRequestSuccessRate

	for _, bc := range []struct {
		name    string
		cd      *flaggerv1beta1.Canary
		resolve func(*benchProvider) Resolver
		queries int
	}{
		{"in-process-resolver/4-metrics", fourMetrics, func(p *benchProvider) Resolver { return benchQueries{p, inProcess} }, 3},
		{"cluster-resolver-istio-builtins/4-metrics", builtinTwice, func(p *benchProvider) Resolver { return benchBackend{cluster, p} }, 3},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := &benchProvider{v: 1}
			a := &Analyzer{Resolver: bc.resolve(p)}
			for _, r := range a.Analyze(context.Background(), bc.cd) {
				if r.Value == nil {
					b.Fatalf("metric %s was not evaluated: %s", r.Name, r.Message)
				}
			}
			if p.queries != bc.queries {
				b.Fatalf("a step sent %d queries, want %d", p.queries, bc.queries)
			}
			p.queries = 0
			b.ReportAllocs()
			for b.Loop() {
				a.Analyze(context.Background(), bc.cd)
			}
			b.ReportMetric(float64(p.queries)/float64(b.N), "queries/op")
		})
	}
}
