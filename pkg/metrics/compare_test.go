package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func TestSplitRatio(t *testing.T) {
	builtin, err := builtinQuery("istio", BuiltinRequestSuccessRate)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query     string
		num, den  string
		scale     float64
		errorSays string
	}{
		{query: builtin,
			num:   `(sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}", response_code!~"5.*"}[{{ interval }}])) or on() vector(0))`,
			den:   `sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}"}[{{ interval }}]))`,
			scale: 100},
		{query: `sum(rate(errors{path="/a/b"}[1m])) / sum(rate(requests[1m]))`, num: `sum(rate(errors{path="/a/b"}[1m]))`, den: `sum(rate(requests[1m]))`, scale: 1},
		{query: `(sum(rate(e[1m])) / sum(rate(r[1m]))) * 100`, num: `sum(rate(e[1m]))`, den: `sum(rate(r[1m]))`, scale: 100},
		{query: `sum(rate(e[1m])) * 1e3 / sum(rate(r[1m])) / 10`, num: `sum(rate(e[1m]))`, den: `sum(rate(r[1m]))`, scale: 100},
		{query: `sum(rate(e[1m])) / 1e-2 / sum(rate(r[1m]))`, num: `sum(rate(e[1m]))`, den: `sum(rate(r[1m]))`, scale: 100},
		{query: `sum(rate(e[1m])) / sum(rate(r[1m])) / sum(rate(x[1m]))`, errorSays: `"sum(rate(x[1m]))" is not the numerator or the denominator`},
		{query: `1 - sum(rate(ok[1m])) / sum(rate(r[1m]))`, errorSays: `the operator '-' outside parentheses`},
		{query: `sum(rate(e[1m])) / sum(rate(r[1m])) > 0`, errorSays: `the operator '>' outside parentheses`},
		{query: `sum(rate(e[1m])) / sum(rate(r[1m])) or vector(0)`, errorSays: `the operator "or" outside parentheses`},
		{query: `sum by (x) (rate(e[1m])) / on(x) sum by (x) (rate(r[1m]))`, errorSays: `the division has a on modifier`},
		{query: `histogram_quantile(0.99, sum(rate(d_bucket[1m])) by (le))`, errorSays: `there is no division`},
		{query: `(sum(rate(e[1m]))`, errorSays: `parentheses do not match`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			rq, err := splitRatio(tt.query)
			if tt.errorSays != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errorSays) || !strings.Contains(err.Error(), "test: proportion needs") {
					t.Fatalf("error %v, want one saying %q", err, tt.errorSays)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rq.numerator != tt.num || rq.denominator != tt.den || rq.scale != tt.scale {
				t.Fatalf("got %q / %q × %v\nwant %q / %q × %v", rq.numerator, rq.denominator, rq.scale, tt.num, tt.den, tt.scale)
			}
		})
	}
}

// TestRenamedTarget_ChangesOnlyTheTargetInBuiltinQueries renders builtin
// queries for the primary: the workload selector changes, nothing else.
func TestRenamedTarget_ChangesOnlyTheTargetInBuiltinQueries(t *testing.T) {
	r := NewResolver(env.Client, ResolverConfig{MetricsServer: "http://prometheus.invalid:9090"})
	cd := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "podinfo"},
		Spec:       flaggerv1beta1.CanarySpec{Provider: "istio", TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"}},
	}
	m := flaggerv1beta1.CanaryMetric{Name: BuiltinRequestDuration, Interval: "30s"}
	_, canary, err := r.Resolve(context.Background(), cd, m)
	if err != nil {
		t.Fatal(err)
	}
	_, primary, err := r.Resolve(context.Background(), renamedTarget(cd, "-primary"), m)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(canary, `destination_workload=~"podinfo"`, `destination_workload=~"podinfo-primary"`); primary != want || primary == canary {
		t.Fatalf("primary query\n%s\nwant\n%s", primary, want)
	}
	if cd.Spec.TargetRef.Name != "podinfo" || cd.Spec.IngressRef != nil {
		t.Fatal("renamedTarget changed the Canary it was given")
	}
	// nginx selects the canary by its ingress, not by the workload: the
	// two queries are the same and the comparison says so.
	cd.Spec.Provider = "nginx"
	m.Compare = &flaggerv1beta1.CanaryCompare{}
	res := (&Analyzer{Resolver: r}).Analyze(context.Background(), withMetrics(cd, m))
	if res[0].Passed || !strings.Contains(res[0].Message, "cannot tell them apart: select the workload with {{ target }}") {
		t.Fatalf("nginx: %+v", res[0])
	}
}

// series is a RangeQuerier with fixed series by query, for the narrow tests
// of how a comparison's verdict becomes a check result.
type series map[string][]float64

func (s series) RunQuery(context.Context, string) (float64, error) { return 0, ErrNoValues }
func (s series) IsOnline(context.Context) (bool, error)            { return true, nil }
func (s series) QueryRange(_ context.Context, q string, r Range) ([]Point, error) {
	vs, ok := s[q]
	if !ok {
		return nil, ErrNoValues
	}
	out := make([]Point, len(vs))
	for i, v := range vs {
		out[i] = Point{Time: r.Start.Add(time.Duration(i) * r.Step), Value: v}
	}
	return out, nil
}

// targeted resolves every metric to the target's name, so that the canary
// and the primary get different queries.
type targeted struct{ p Provider }

func (r targeted) Resolve(_ context.Context, cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric) (Provider, string, error) {
	return r.p, m.Name + ":" + cd.Spec.TargetRef.Name, nil
}

func withMetrics(cd *flaggerv1beta1.Canary, ms ...flaggerv1beta1.CanaryMetric) *flaggerv1beta1.Canary {
	out := cd.DeepCopy()
	out.Spec.Analysis = &flaggerv1beta1.CanaryAnalysis{Metrics: ms}
	return out
}

func TestAnalyze_TurnsComparisonsIntoCheckResults(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	base := []float64{100, 104, 98, 101, 97, 103, 99, 102, 100, 96, 105, 101}
	slower := make([]float64, len(base))
	for i, v := range base {
		slower[i] = 1.4 * v
	}
	p := series{
		"lat:podinfo": slower, "lat:podinfo-primary": base,
		"same:podinfo": base, "same:podinfo-primary": base,
		"few:podinfo": slower[:4], "few:podinfo-primary": base[:4],
		"none:podinfo-primary": base,
	}
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"}}}
	cd.Status.Phase = flaggerv1beta1.CanaryPhaseProgressing
	cd.Status.LastTransitionTime = metav1.NewTime(now.Add(-10 * time.Minute))
	cmp := func(c flaggerv1beta1.CanaryCompare) *flaggerv1beta1.CanaryCompare {
		c.MinSamples = ptr.To(int32(10))
		return &c
	}
	tests := []struct {
		metric                              flaggerv1beta1.CanaryMetric
		passed, noData, held, critical, cnt bool
		verdict, says                       string
	}{
		{metric: flaggerv1beta1.CanaryMetric{Name: "lat", Compare: cmp(flaggerv1beta1.CanaryCompare{Direction: "increase"})},
			cnt: true, verdict: "High", says: "High against the primary: the canary is higher: mean ×1.4"},
		{metric: flaggerv1beta1.CanaryMetric{Name: "lat", Compare: cmp(flaggerv1beta1.CanaryCompare{Direction: "increase", Critical: true})},
			cnt: true, critical: true, verdict: "High", says: "roll back now"},
		{metric: flaggerv1beta1.CanaryMetric{Name: "lat", DryRun: true, Compare: cmp(flaggerv1beta1.CanaryCompare{Critical: true})},
			verdict: "High"},
		{metric: flaggerv1beta1.CanaryMetric{Name: "lat", Compare: cmp(flaggerv1beta1.CanaryCompare{Direction: "decrease"})},
			passed: true, verdict: "High", says: "not a failure for direction decrease"},
		{metric: flaggerv1beta1.CanaryMetric{Name: "lat", Compare: cmp(flaggerv1beta1.CanaryCompare{AllowedIncrease: ptr.To(1.5)})},
			passed: true, verdict: "Pass", says: "within the allowed increase"},
		{metric: flaggerv1beta1.CanaryMetric{Name: "same", Compare: cmp(flaggerv1beta1.CanaryCompare{})},
			passed: true, verdict: "Pass"},
		{metric: flaggerv1beta1.CanaryMetric{Name: "few", OnNoData: flaggerv1beta1.NoDataHold, Compare: cmp(flaggerv1beta1.CanaryCompare{})},
			noData: true, held: true, verdict: "Inconclusive", says: "too few samples"},
		{metric: flaggerv1beta1.CanaryMetric{Name: "few", Compare: cmp(flaggerv1beta1.CanaryCompare{})},
			noData: true, cnt: true, verdict: "Inconclusive"},
		{metric: flaggerv1beta1.CanaryMetric{Name: "none", OnNoData: flaggerv1beta1.NoDataSkip, Compare: cmp(flaggerv1beta1.CanaryCompare{})},
			passed: true, noData: true, verdict: "NoData", says: "the canary has no samples"},
		{metric: flaggerv1beta1.CanaryMetric{Name: "lat", Compare: cmp(flaggerv1beta1.CanaryCompare{Against: "baseline"})},
			cnt: true, says: "compare against: baseline compares with the <name>-baseline Deployment, which runs only with analysis.baseline: true"},
		{metric: flaggerv1beta1.CanaryMetric{Name: "lat", Compare: cmp(flaggerv1beta1.CanaryCompare{Test: "proportion"})},
			cnt: true, says: "test: proportion needs a query of the form numerator / denominator"},
	}
	a := &Analyzer{Resolver: targeted{p}, Now: func() time.Time { return now }}
	for _, tt := range tests {
		r := a.Analyze(context.Background(), withMetrics(cd, tt.metric))[0]
		name := tt.metric.Name + " " + tt.says
		if r.Passed != tt.passed || r.NoData != tt.noData || r.Held != tt.held || r.Critical != tt.critical || r.Counts() != tt.cnt {
			t.Errorf("%s: passed %v noData %v held %v critical %v counts %v (%s)", name, r.Passed, r.NoData, r.Held, r.Critical, r.Counts(), r.Message)
		}
		if !strings.Contains(r.Message, tt.says) {
			t.Errorf("%s: message %q", name, r.Message)
		}
		switch {
		case tt.verdict == "" && r.Comparison != nil:
			t.Errorf("%s: a comparison was recorded: %+v", name, r.Comparison)
		case tt.verdict != "" && (r.Comparison == nil || r.Comparison.Verdict != tt.verdict):
			t.Errorf("%s: comparison %+v, want verdict %s", name, r.Comparison, tt.verdict)
		}
		if r.Query != tt.metric.Name+":podinfo" && tt.verdict != "" {
			t.Errorf("%s: query %q", name, r.Query)
		}
	}

	// The statistics of a High verdict are in the result.
	r := a.Analyze(context.Background(), withMetrics(cd, tests[0].metric))[0]
	c := r.Comparison
	if *c.Canary.Count != 12 || *c.Baseline.Count != 12 || *c.Baseline.Median != 100.5 || *c.Effect < 1.39 || *c.Lower <= 0 ||
		*c.Confidence != 0.98 || *c.PValue > 1e-4 || c.Test != "mannWhitney" || c.Against != "primary" || r.Value == nil || *r.Value < 140 {
		t.Errorf("comparison %+v, value %v", c, r.Value)
	}
}

// TestAnalyze_ComparesAgainstTheBaseline: with against: baseline the
// comparison side is <target>-baseline, not the primary.
func TestAnalyze_ComparesAgainstTheBaseline(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	base := []float64{100, 104, 98, 101, 97, 103, 99, 102, 100, 96, 105, 101}
	slower := make([]float64, len(base))
	for i, v := range base {
		slower[i] = 1.4 * v
	}
	// The primary is as slow as the canary (a warm cache, a busy node):
	// only the baseline shows the regression.
	p := series{"lat:podinfo": slower, "lat:podinfo-primary": slower, "lat:podinfo-baseline": base}
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"}}}
	cd.Status.Phase = flaggerv1beta1.CanaryPhaseProgressing
	cd.Status.LastTransitionTime = metav1.NewTime(now.Add(-10 * time.Minute))
	a := &Analyzer{Resolver: targeted{p}, Now: func() time.Time { return now }}
	for _, against := range []flaggerv1beta1.CompareAgainst{flaggerv1beta1.CompareAgainstBaseline, flaggerv1beta1.CompareAgainstPrimary} {
		m := flaggerv1beta1.CanaryMetric{Name: "lat", Compare: &flaggerv1beta1.CanaryCompare{Against: against, Direction: "increase", MinSamples: ptr.To[int32](10)}}
		in := withMetrics(cd, m)
		in.Spec.Analysis.Baseline = true
		r := a.Analyze(context.Background(), in)[0]
		c := r.Comparison
		switch against {
		case flaggerv1beta1.CompareAgainstBaseline:
			if r.Passed || c == nil || c.Verdict != "High" || c.Against != "baseline" || !strings.HasPrefix(r.Message, "High against the baseline: the canary is higher: mean ×1.4") {
				t.Errorf("against the baseline: passed %v, comparison %+v, message %q", r.Passed, c, r.Message)
			}
		default:
			if !r.Passed || c == nil || c.Verdict != "Pass" || c.Against != "primary" {
				t.Errorf("against the primary: passed %v, comparison %+v, message %q", r.Passed, c, r.Message)
			}
		}
	}
}

func TestCompareWindow_StartsWithTheAnalysis(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	cd := &flaggerv1beta1.Canary{}
	cd.Status.Phase = flaggerv1beta1.CanaryPhaseProgressing
	cd.Status.LastTransitionTime = metav1.NewTime(now.Add(-5 * time.Minute))
	w, err := compareWindow(cd, flaggerv1beta1.CanaryMetric{Interval: "30s"}, now)
	if err != nil || !w.Start.Equal(now.Add(-270*time.Second)) || !w.End.Equal(now) || w.Step != 30*time.Second {
		t.Fatalf("window %+v, %v", w, err)
	}
	cd.Status.Phase = flaggerv1beta1.CanaryPhaseSucceeded
	if w, _ := compareWindow(cd, flaggerv1beta1.CanaryMetric{}, now); !w.Start.Equal(now.Add(-999*time.Minute)) || w.Step != time.Minute {
		t.Fatalf("outside an analysis: %+v", w)
	}
	if _, err := compareWindow(cd, flaggerv1beta1.CanaryMetric{Interval: "500ms"}, now); err == nil {
		t.Fatal("an interval under a second was accepted")
	}
	// One second into the analysis there is no whole interval yet.
	cd.Status.Phase = flaggerv1beta1.CanaryPhaseProgressing
	cd.Status.LastTransitionTime = metav1.NewTime(now.Add(-time.Second))
	m := flaggerv1beta1.CanaryMetric{Name: "lat", Interval: "30s", OnNoData: flaggerv1beta1.NoDataHold, Compare: &flaggerv1beta1.CanaryCompare{}}
	r := (&Analyzer{Resolver: targeted{series{}}, Now: func() time.Time { return now }}).Analyze(context.Background(), withMetrics(cd, m))[0]
	if !r.Held || !strings.Contains(r.Message, "started less than one metric interval (30s) ago") {
		t.Fatalf("%+v", r)
	}
}
