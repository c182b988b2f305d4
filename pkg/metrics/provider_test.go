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
		{Name: "err", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
		{Name: "unknown", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
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
	rng := &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{Analysis: &flaggerv1beta1.CanaryAnalysis{Metrics: []flaggerv1beta1.CanaryMetric{{Name: "ok", ThresholdRange: rng}, {Name: "err", ThresholdRange: rng}}}}}
	a.Analyze(context.Background(), cd)
	if want := []string{"scripted <nil>", "scripted boom"}; !slices.Equal(seen, want) {
		t.Errorf("observed %q, want %q", seen, want)
	}
	if k := KindOf(&Prometheus{}); k != "prometheus" {
		t.Errorf("KindOf(*Prometheus) = %q", k)
	}
}

// counting is a provider that counts the queries it answers, all with v
// (1 when zero).
type counting struct {
	n int
	v float64
}

func (c *counting) RunQuery(context.Context, string) (float64, error) {
	c.n++
	if c.v == 0 {
		return 1, nil
	}
	return c.v, nil
}
func (c *counting) IsOnline(context.Context) (bool, error) { return true, nil }

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

// TestAnalyze_HonoursTheLegacyThresholdAsFlaggerDoes checks the deprecated
// threshold of a metric without thresholdRange: a minimum for the builtin
// request-success-rate, a maximum (fail when the value is above it) for
// request-duration, inline queries and templates, as Flagger v1.44 reads
// it; and a metric with no bound at all fails closed without a query.
func TestAnalyze_HonoursTheLegacyThresholdAsFlaggerDoes(t *testing.T) {
	tpl := &flaggerv1beta1.CrossNamespaceObjectReference{Name: "errors"}
	for _, tc := range []struct {
		name     string
		metric   flaggerv1beta1.CanaryMetric
		value    float64
		passed   bool
		min, max *float64
		msg      string
	}{
		{"success rate above its threshold", flaggerv1beta1.CanaryMetric{Name: BuiltinRequestSuccessRate, Threshold: 99}, 99.5, true, ptr.To(99.0), nil, ""},
		{"success rate below its threshold", flaggerv1beta1.CanaryMetric{Name: BuiltinRequestSuccessRate, Threshold: 99}, 98, false, ptr.To(99.0), nil, "98 is below the minimum 99"},
		{"duration below its threshold", flaggerv1beta1.CanaryMetric{Name: BuiltinRequestDuration, Threshold: 500}, 400, true, nil, ptr.To(500.0), ""},
		{"duration above its threshold", flaggerv1beta1.CanaryMetric{Name: BuiltinRequestDuration, Threshold: 500}, 600, false, nil, ptr.To(500.0), "600 is above the maximum 500"},
		{"template metric above its threshold", flaggerv1beta1.CanaryMetric{Name: "errors", TemplateRef: tpl, Threshold: 10}, 50, false, nil, ptr.To(10.0), "50 is above the maximum 10"},
		{"template metric at its threshold", flaggerv1beta1.CanaryMetric{Name: "errors", TemplateRef: tpl, Threshold: 10}, 10, true, nil, ptr.To(10.0), ""},
		{"template named like the success rate is a maximum", flaggerv1beta1.CanaryMetric{Name: BuiltinRequestSuccessRate, TemplateRef: tpl, Threshold: 10}, 50, false, nil, ptr.To(10.0), "above the maximum"},
		{"inline query above its threshold", flaggerv1beta1.CanaryMetric{Name: "q", Query: "sum(errors)", Threshold: 1}, 3, false, nil, ptr.To(1.0), "3 is above the maximum 1"},
		{"thresholdRange wins over threshold", flaggerv1beta1.CanaryMetric{Name: "errors", TemplateRef: tpl, Threshold: 10,
			ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(100.0)}}, 50, true, nil, ptr.To(100.0), ""},
		{"neither threshold nor thresholdRange", flaggerv1beta1.CanaryMetric{Name: "errors", TemplateRef: tpl}, 50, false, nil, nil,
			`metric "errors" has neither thresholdRange nor threshold`},
		{"an empty thresholdRange", flaggerv1beta1.CanaryMetric{Name: "errors", TemplateRef: tpl, ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{}}, 50, false, nil, nil,
			"sets neither min nor max"},
		{"a NaN threshold", flaggerv1beta1.CanaryMetric{Name: "errors", TemplateRef: tpl, Threshold: math.NaN()}, 50, false, nil, nil, "not a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &counting{v: tc.value}
			cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{Analysis: &flaggerv1beta1.CanaryAnalysis{Metrics: []flaggerv1beta1.CanaryMetric{tc.metric}}}}
			a := &Analyzer{Resolver: sameQuery{p}}
			r := a.Analyze(context.Background(), cd)[0]
			if r.Passed != tc.passed || !strings.Contains(r.Message, tc.msg) {
				t.Errorf("passed=%v message=%q, want passed=%v message containing %q", r.Passed, r.Message, tc.passed, tc.msg)
			}
			if !equalPtr(r.Min, tc.min) || !equalPtr(r.Max, tc.max) {
				t.Errorf("recorded range [%v, %v], want [%v, %v]", deref(r.Min), deref(r.Max), deref(tc.min), deref(tc.max))
			}
			unbounded := tc.min == nil && tc.max == nil
			if unbounded && p.n != 0 {
				t.Errorf("a metric without bounds ran %d queries", p.n)
			}
			// The analysis must not start on a metric that could never fail.
			if err := a.Check(context.Background(), cd); unbounded != (err != nil) {
				t.Errorf("Check: %v, want an error: %v", err, unbounded)
			}
		})
	}
}

func equalPtr(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref(p *float64) any {
	if p == nil {
		return "none"
	}
	return *p
}

// noted answers with a value and a remark.
type noted struct{}

func (noted) RunQuery(context.Context, string) (float64, error) { return 3, nil }
func (noted) IsOnline(context.Context) (bool, error)            { return true, nil }
func (noted) RunQueryNoted(context.Context, string) (float64, string, error) {
	return 3, "the query returned 2 series and the last one was compared", nil
}

func TestAnalyze_RecordsTheProvidersNoteInTheMessage(t *testing.T) {
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{Analysis: &flaggerv1beta1.CanaryAnalysis{Metrics: []flaggerv1beta1.CanaryMetric{
		{Name: "ok", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(5.0)}},
		{Name: "high", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}},
	}}}}
	r := (&Analyzer{Resolver: byName{noted{}}}).Analyze(context.Background(), cd)
	if !r[0].Passed || r[0].Message != "the query returned 2 series and the last one was compared" {
		t.Errorf("passing check: %+v", r[0])
	}
	if r[1].Passed || r[1].Message != "3 is above the maximum 1; the query returned 2 series and the last one was compared" {
		t.Errorf("failing check: %+v", r[1])
	}
}
