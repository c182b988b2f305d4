package metrics

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/metrics/promtest"
)

// meanLatency is a MetricTemplate query: the mean request duration of the
// workload {{ target }}, in milliseconds.
const meanLatency = `sum(rate(istio_request_duration_milliseconds_sum{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload="{{ target }}"}[{{ interval }}]))
/ sum(rate(istio_request_duration_milliseconds_count{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload="{{ target }}"}[{{ interval }}]))`

// TestCompare_OnARealPrometheus runs comparisons against Debian's
// Prometheus scraping Istio-shaped metrics whose latency changes every
// half second at random:
//
//   - slow: the canary's mean latency is 1.5× the primary's at every
//     moment (about 60 to 72 ms against 40 to 48 ms). A fixed threshold of
//     100 ms, too loose, passes it; the comparison finds it High.
//   - same: canary and primary follow the same random latency: Pass.
//   - errs: the canary answers 2% errors, the primary 1%; the builtin
//     request-success-rate compared with test: proportion finds it Low.
//   - errsame: both answer 1% errors: Pass.
func TestCompare_OnARealPrometheus(t *testing.T) {
	if _, err := promtest.FindBinary(); err != nil {
		t.Fatal(err)
	}
	const ns = "compare"
	istio, _ := promtest.MeshByName("istio")
	tr := promtest.NewTraffic()
	exporter := httptest.NewServer(tr.Handler())
	t.Cleanup(exporter.Close)

	// Requests per 10 ms tick: 200, of which k are slow (200 ms) on the
	// primaries and 25 + 1.5k on the slow canary, k even in [0, 10]: mean
	// latencies 40 + 0.8k and 60 + 1.2k ms. The same canary follows the
	// primary half a second late, so that its samples are close to the
	// primary's but not equal to them.
	var previous uint64
	setLatency := func(k uint64) {
		for _, w := range []struct {
			name string
			slow uint64
		}{{"slow", 25 + 3*k/2}, {"slow-primary", k}, {"same", previous}, {"same-primary", k}} {
			tr.Set(istio, istio.Labels(ns, w.name), promtest.Series{Code: istio.OK, Fast: 200 - w.slow, Slow: w.slow})
		}
		previous = k
	}
	setLatency(0)
	for name, errs := range map[string]uint64{"errs": 4, "errs-primary": 2, "errsame": 2, "errsame-primary": 2} {
		tr.Set(istio, istio.Labels(ns, name), promtest.Series{Code: istio.OK, Fast: 200 - errs}, promtest.Series{Code: istio.Error, Fast: errs})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(23, 1))
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				setLatency(2 * rng.Uint64N(6))
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := promtest.Start(ctx, map[string]string{"istio": exporter.URL + "/istio"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	if err := srv.WaitForScrapes(ctx, 2); err != nil {
		t.Fatal(err)
	}
	start := time.Now()

	create(t, namespace(ns), metricTemplate(ns, "mean-latency", flaggerv1beta1.MetricTemplateProvider{Type: "prometheus", Address: srv.URL}, meanLatency))
	latency := flaggerv1beta1.CrossNamespaceObjectReference{Name: "mean-latency"}
	canary := func(target string, metrics ...flaggerv1beta1.CanaryMetric) *flaggerv1beta1.Canary {
		cd := &flaggerv1beta1.Canary{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: target},
			Spec: flaggerv1beta1.CanarySpec{
				Provider: "istio", MetricsServer: srv.URL,
				TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
				Analysis:  &flaggerv1beta1.CanaryAnalysis{Metrics: metrics},
			},
		}
		cd.Status.Phase = flaggerv1beta1.CanaryPhaseProgressing
		cd.Status.LastTransitionTime = metav1.NewTime(start)
		return cd
	}
	loose := flaggerv1beta1.CanaryMetric{Name: "latency-threshold", Interval: "2s", TemplateRef: &latency,
		ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(100.0)}}
	compared := flaggerv1beta1.CanaryMetric{Name: "latency", Interval: "2s", TemplateRef: &latency, OnNoData: flaggerv1beta1.NoDataHold,
		Compare: &flaggerv1beta1.CanaryCompare{Direction: flaggerv1beta1.CompareIncrease, MinSamples: ptr.To(int32(8))}}
	successRate := flaggerv1beta1.CanaryMetric{Name: BuiltinRequestSuccessRate, Interval: "2s", OnNoData: flaggerv1beta1.NoDataHold,
		Compare: &flaggerv1beta1.CanaryCompare{Test: flaggerv1beta1.CompareProportion, Direction: flaggerv1beta1.CompareDecrease}}

	a := &Analyzer{Resolver: NewResolver(env.Client, ResolverConfig{MetricsServer: srv.URL})}
	cases := []struct {
		cd   *flaggerv1beta1.Canary
		want []bool // passed, per metric
		verd []string
	}{
		{canary("slow", loose, compared), []bool{true, false}, []string{"", "High"}},
		{canary("same", loose, compared), []bool{true, true}, []string{"", "Pass"}},
		{canary("errs", successRate), []bool{false}, []string{"Low"}},
		{canary("errsame", successRate), []bool{true}, []string{"Pass"}},
	}
	for _, tc := range cases {
		t.Run(tc.cd.Name, func(t *testing.T) {
			// Wait until the window holds enough samples: until then the
			// comparisons are held (onNoData: hold).
			var got []flaggerv1beta1.CanaryCheckResult
			for {
				got = a.Analyze(ctx, tc.cd)
				held := false
				for _, r := range got {
					held = held || r.Held
				}
				if !held || ctx.Err() != nil {
					break
				}
				time.Sleep(time.Second)
			}
			for i, r := range got {
				if r.Passed != tc.want[i] || r.Held {
					t.Errorf("%s: passed %v held %v, want passed %v: %s\nquery: %s", r.Name, r.Passed, r.Held, tc.want[i], r.Message, r.Query)
				}
				if tc.verd[i] == "" {
					continue
				}
				if r.Comparison == nil || r.Comparison.Verdict != tc.verd[i] {
					t.Errorf("%s: comparison %+v, want %s: %s", r.Name, r.Comparison, tc.verd[i], r.Message)
					continue
				}
				t.Logf("%s %s after %s: %s", tc.cd.Name, r.Name, time.Since(start).Round(time.Second), r.Message)
			}
			if tc.cd.Name == "slow" {
				if v := got[0].Value; v == nil || *v < 60 || *v > 72 {
					t.Errorf("the loose threshold saw %v ms, want 60 to 72", v)
				}
				if e := got[1].Comparison.Effect; e == nil || *e < 1.4 || *e > 1.6 {
					t.Errorf("effect %v, want about 1.5", e)
				}
			}
			if tc.cd.Name == "errs" {
				c := got[0].Comparison
				if c.Canary.Mean == nil || *c.Canary.Mean < 0.979 || *c.Canary.Mean > 0.981 || *c.Baseline.Mean < 0.989 || *c.Baseline.Mean > 0.991 {
					t.Errorf("success rates %v and %v, want 0.98 and 0.99", c.Canary.Mean, c.Baseline.Mean)
				}
				if got[0].Value == nil || *got[0].Value < 97.9 || *got[0].Value > 98.1 {
					t.Errorf("value %v, want the canary's success rate in percent, 98", got[0].Value)
				}
			}
		})
	}
}
