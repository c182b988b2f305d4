package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// scripted answers each query with a fixed value or error.
type scripted map[string]struct {
	v   float64
	err error
}

func (s scripted) RunQuery(_ context.Context, q string) (float64, error) { return s[q].v, s[q].err }
func (s scripted) IsOnline(context.Context) (bool, error)                { return true, nil }

type byName struct{ p Provider }

func (r byName) Resolve(_ context.Context, _ *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric) (Provider, string, error) {
	if m.Name == "unknown" {
		return nil, "", errors.New(`metric "unknown" is neither builtin nor backed by a templateRef`)
	}
	return r.p, m.Name, nil
}

func TestAnalyze_ComparesValuesWithRangesAndFailsClosed(t *testing.T) {
	p := scripted{
		"ok":   {v: 99.5},
		"low":  {v: 90},
		"high": {v: 812},
		"nan":  {v: math.NaN()},
		"err":  {err: ErrNoValues},
	}
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{Analysis: &flaggerv1beta1.CanaryAnalysis{Metrics: []flaggerv1beta1.CanaryMetric{
		{Name: "ok", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
		{Name: "low", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
		{Name: "high", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
		{Name: "nan", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
		{Name: "err"},
		{Name: "unknown"},
	}}}}
	got := (&Analyzer{Resolver: byName{p}}).Analyze(context.Background(), cd)
	want := []struct {
		passed bool
		msg    string
	}{
		{true, ""}, {false, "90 is below the minimum 99"}, {false, "812 is above the maximum 500"},
		{false, "not a number"}, {false, "no values"}, {false, "neither builtin"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Passed != w.passed || !strings.Contains(got[i].Message, w.msg) || got[i].Kind != flaggerv1beta1.CheckMetric {
			t.Errorf("%s: passed=%v message=%q, want passed=%v message containing %q", got[i].Name, got[i].Passed, got[i].Message, w.passed, w.msg)
		}
	}
	if got[0].Value == nil || *got[0].Value != 99.5 || got[0].Min == nil || *got[0].Min != 99 {
		t.Errorf("result does not carry the value and range: %+v", got[0])
	}
}

func TestAnalyze_AppliesOnNoDataAndDryRunAndRecordsTheQuery(t *testing.T) {
	p := scripted{"empty": {err: ErrNoValues}, "nan": {err: ErrNaN}, "bad": {v: 50}}
	rng := &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}
	tests := []struct {
		metric                       flaggerv1beta1.CanaryMetric
		passed, noData, held, dryRun bool
		counts                       bool
	}{
		{metric: flaggerv1beta1.CanaryMetric{Name: "empty", ThresholdRange: rng}, noData: true, counts: true},
		{metric: flaggerv1beta1.CanaryMetric{Name: "nan", ThresholdRange: rng, OnNoData: flaggerv1beta1.NoDataFail}, noData: true, counts: true},
		{metric: flaggerv1beta1.CanaryMetric{Name: "empty", ThresholdRange: rng, OnNoData: flaggerv1beta1.NoDataSkip}, passed: true, noData: true},
		{metric: flaggerv1beta1.CanaryMetric{Name: "nan", ThresholdRange: rng, OnNoData: flaggerv1beta1.NoDataHold}, noData: true, held: true},
		{metric: flaggerv1beta1.CanaryMetric{Name: "bad", ThresholdRange: rng, DryRun: true}, dryRun: true},
		{metric: flaggerv1beta1.CanaryMetric{Name: "bad", ThresholdRange: rng}, counts: true},
	}
	for _, tt := range tests {
		cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{Analysis: &flaggerv1beta1.CanaryAnalysis{Metrics: []flaggerv1beta1.CanaryMetric{tt.metric}}}}
		r := (&Analyzer{Resolver: byName{p}}).Analyze(context.Background(), cd)[0]
		if r.Passed != tt.passed || r.NoData != tt.noData || r.Held != tt.held || r.DryRun != tt.dryRun || r.Counts() != tt.counts {
			t.Errorf("%s (onNoData %q, dryRun %v): %+v", tt.metric.Name, tt.metric.OnNoData, tt.metric.DryRun, r)
		}
		if r.Query != tt.metric.Name {
			t.Errorf("%s: query %q not recorded", tt.metric.Name, r.Query)
		}
	}
}

func TestAnalyze_ReportsEachQueryToObserve(t *testing.T) {
	var seen []string
	a := &Analyzer{Resolver: byName{scripted{"ok": {v: 1}, "err": {err: errors.New("boom")}}},
		Observe: func(provider string, took time.Duration, err error) {
			seen = append(seen, fmt.Sprintf("%s %v", provider, err))
		}}
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{Analysis: &flaggerv1beta1.CanaryAnalysis{Metrics: []flaggerv1beta1.CanaryMetric{{Name: "ok"}, {Name: "err"}}}}}
	a.Analyze(context.Background(), cd)
	if want := []string{"scripted <nil>", "scripted boom"}; !slices.Equal(seen, want) {
		t.Errorf("observed %q, want %q", seen, want)
	}
	if k := KindOf(&Prometheus{}); k != "prometheus" {
		t.Errorf("KindOf(*Prometheus) = %q", k)
	}
}

// counting is a provider that counts the queries it answers.
type counting struct{ n int }

func (c *counting) RunQuery(context.Context, string) (float64, error) { c.n++; return 1, nil }
func (c *counting) IsOnline(context.Context) (bool, error)            { return true, nil }

type sameQuery struct{ p Provider }

func (r sameQuery) Resolve(context.Context, *flaggerv1beta1.Canary, flaggerv1beta1.CanaryMetric) (Provider, string, error) {
	return r.p, "sum(rate(requests[1m]))", nil
}

func TestAnalyze_RunsAQuerySharedByMetricsOnce(t *testing.T) {
	p := &counting{}
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{Analysis: &flaggerv1beta1.CanaryAnalysis{Metrics: []flaggerv1beta1.CanaryMetric{
		{Name: "a", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(0.5)}},
		{Name: "b", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(0.5)}},
	}}}}
	r := (&Analyzer{Resolver: sameQuery{p}}).Analyze(context.Background(), cd)
	if p.n != 1 || len(r) != 2 || !r[0].Passed || r[1].Passed {
		t.Errorf("%d queries, results %+v; want one query judged by both ranges", p.n, r)
	}
}
