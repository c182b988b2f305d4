package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/judge"
)

// RangeQuerier is a provider that can also return a metric's values over a
// time range, one per step: what a comparison of the canary with the
// primary needs. Prometheus implements it.
type RangeQuerier interface {
	// QueryRange runs a query over a range. No data is ErrNoValues.
	QueryRange(ctx context.Context, query string, r Range) ([]Point, error)
}

// Range is a time range and the step between two evaluations.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// Point is one value of a series.
type Point struct {
	Time  time.Time
	Value float64
}

// maxComparePoints bounds the samples of each side of a comparison: the
// window starts no earlier than this many metric intervals ago.
const maxComparePoints = 1000

// comparedSuffix is the name suffix of the workload a canary is compared with.
var comparedSuffix = map[flaggerv1beta1.CompareAgainst]string{
	flaggerv1beta1.CompareAgainstPrimary:  "-primary",
	flaggerv1beta1.CompareAgainstBaseline: "-baseline",
}

// compare evaluates metric m, which has a compare block: it renders the
// metric's query for the canary and for the workload it is compared with,
// runs both as range queries over the window of the current analysis (one
// sample per metric interval), and judges the two samples. r holds what
// Analyze filled in already; the result says whether the check passed,
// the verdict and statistics, and whether a critical comparison failed.
// Without enough data the metric's onNoData applies.
func (a *Analyzer) compare(ctx context.Context, cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric, r flaggerv1beta1.CanaryCheckResult, now time.Time) flaggerv1beta1.CanaryCheckResult {
	c := m.Compare
	against := c.Against
	if against == "" {
		against = flaggerv1beta1.CompareAgainstPrimary
	}
	test := c.Test
	if test == "" {
		test = flaggerv1beta1.CompareMannWhitney
	}
	if against == flaggerv1beta1.CompareAgainstBaseline && (cd.Spec.Analysis == nil || !cd.Spec.Analysis.Baseline) {
		// The API server refuses it; a Canary stored before that rule still
		// gets an answer.
		r.Message = "compare against: baseline compares with the <name>-baseline Deployment, which runs only with analysis.baseline: true; set it, or compare against: primary"
		return r
	}
	cfg := judgeConfig(c)
	if err := cfg.Validate(); err != nil {
		r.Message = fmt.Sprintf("compare: %v", err)
		return r
	}

	rq, canaryQuery, otherQuery, err := a.compareQueries(ctx, cd, m, against)
	r.Query = canaryQuery
	if err != nil {
		r.Message = err.Error()
		return r
	}
	window, err := compareWindow(cd, m, now)
	if err != nil {
		r.Message = fmt.Sprintf("compare: %v", err)
		return r
	}
	if window.Start.After(window.End) {
		r.NoData = true
		r.Passed, r.Held, r.Message = applyNoData(m.OnNoData, noData(fmt.Sprintf(
			"Inconclusive against the %s: the analysis started less than one metric interval (%s) ago", against, window.Step)))
		return r
	}

	var res judge.Result
	var scale float64
	switch test {
	case flaggerv1beta1.CompareProportion:
		res, scale, err = a.compareProportions(ctx, rq, canaryQuery, otherQuery, window, cfg)
	default:
		res, err = a.compareSeries(ctx, rq, canaryQuery, otherQuery, window, cfg)
		scale = 1
	}
	if err != nil {
		r.Message = fmt.Sprintf("compare: %v", err)
		return r
	}
	r.Comparison = comparisonStatus(res, test, against)
	if v := res.Canary.Mean * scale; !math.IsNaN(v) && !math.IsInf(v, 0) {
		r.Value = &v
	}
	return withVerdict(r, res, m, against, otherQuery)
}

// compareQueries resolves metric m for the canary and for the workload it
// is compared with, and checks that the two queries differ and that the
// provider answers range queries.
func (a *Analyzer) compareQueries(ctx context.Context, cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric, against flaggerv1beta1.CompareAgainst) (RangeQuerier, string, string, error) {
	p, canaryQuery, err := a.Resolver.Resolve(ctx, cd, m)
	if err != nil {
		return nil, "", "", err
	}
	_, otherQuery, err := a.Resolver.Resolve(ctx, renamedTarget(cd, comparedSuffix[against]), m)
	if err != nil {
		return nil, canaryQuery, "", err
	}
	if canaryQuery == otherQuery {
		return nil, canaryQuery, otherQuery, fmt.Errorf("compare: the query is the same for the canary and the %s, so it cannot tell them apart: select the workload with {{ target }} (%s)", against, OneLine(canaryQuery))
	}
	rq, ok := p.(RangeQuerier)
	if !ok {
		return nil, canaryQuery, otherQuery, fmt.Errorf("compare: the %s provider cannot run range queries, which a comparison needs; use a prometheus MetricTemplate", KindOf(p))
	}
	return rq, canaryQuery, otherQuery, nil
}

// withVerdict sets the outcome of a check from the judge's result: a bad
// verdict fails it (and marks it critical when the comparison is), a
// verdict without enough data follows onNoData, any other passes.
func withVerdict(r flaggerv1beta1.CanaryCheckResult, res judge.Result, m flaggerv1beta1.CanaryMetric, against flaggerv1beta1.CompareAgainst, otherQuery string) flaggerv1beta1.CanaryCheckResult {
	msg := fmt.Sprintf("%s against the %s: %s", res.Verdict, against, res.Reason)
	switch {
	case !res.Decided():
		r.NoData = true
		if res.Verdict == judge.NoData && res.Canary.N > 0 {
			msg += fmt.Sprintf(" (its query: %s)", OneLine(otherQuery))
		}
		r.Passed, r.Held, r.Message = applyNoData(m.OnNoData, noData(msg))
	case res.Bad():
		r.Message = msg
		// A dry run records the verdict but never rolls back.
		r.Critical = m.Compare.Critical && !m.DryRun
		if r.Critical {
			r.Message += "; the comparison is critical: roll back now"
		}
	default:
		r.Passed, r.Message = true, msg
	}
	return r
}

// compareSeries judges the values of the two queries with the rank-sum
// test, on the timestamps where both have a value.
func (a *Analyzer) compareSeries(ctx context.Context, rq RangeQuerier, canaryQuery, otherQuery string, w Range, cfg judge.Config) (judge.Result, error) {
	canary, err := a.queryRange(ctx, rq, canaryQuery, w)
	if err != nil {
		return judge.Result{}, err
	}
	other, err := a.queryRange(ctx, rq, otherQuery, w)
	if err != nil {
		return judge.Result{}, err
	}
	if len(canary) == 0 || len(other) == 0 {
		return judge.MannWhitney(values(canary), values(other), cfg), nil // the judge says which side has none
	}
	c, o := aligned(canary, other)
	return judge.MannWhitney(c, o, cfg), nil
}

// times returns the times of a series' points, in Unix milliseconds.
func times(ps []Point) map[int64]bool {
	out := make(map[int64]bool, len(ps))
	for _, p := range ps {
		out[p.Time.UnixMilli()] = true
	}
	return out
}

// values returns the values of a series.
func values(ps []Point) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p.Value
	}
	return out
}

// compareProportions splits the query into its numerator and denominator,
// turns each side's rates into counts over the window (a rate per second
// times the step, summed over the steps where the denominator has a
// value), and judges the two rates with the two-proportion test. It
// returns the query's scale, which turns a rate back into the query's
// unit (100 for a percentage).
func (a *Analyzer) compareProportions(ctx context.Context, rq RangeQuerier, canaryQuery, otherQuery string, w Range, cfg judge.Config) (judge.Result, float64, error) {
	cr, err := splitRatio(canaryQuery)
	if err != nil {
		return judge.Result{}, 0, err
	}
	oq, err := splitRatio(otherQuery)
	if err != nil {
		return judge.Result{}, 0, err
	}
	series := make([][]Point, 4)
	for i, q := range []string{cr.numerator, cr.denominator, oq.numerator, oq.denominator} {
		if series[i], err = a.queryRange(ctx, rq, q, w); err != nil {
			return judge.Result{}, 0, err
		}
	}
	// Only the steps where both sides had requests count, so that both are
	// measured over the same time; a side without any is left empty, and
	// the judge says so.
	canarySteps, otherSteps := times(series[1]), times(series[3])
	counted := func(t int64) bool {
		return (len(canarySteps) == 0 || canarySteps[t]) && (len(otherSteps) == 0 || otherSteps[t])
	}
	seconds := w.Step.Seconds()
	count := func(numerator, denominator []Point) judge.Counts {
		var c judge.Counts
		for _, p := range denominator {
			if counted(p.Time.UnixMilli()) {
				c.Total += p.Value * seconds
			}
		}
		for _, p := range numerator {
			if counted(p.Time.UnixMilli()) {
				c.Events += p.Value * seconds
			}
		}
		return c
	}
	res := judge.Proportions(count(series[0], series[1]), count(series[2], series[3]), cfg)
	return res, cr.scale, nil
}

// queryRange runs one range query, reporting its latency to Observe. No
// data is an empty series, not an error: the judge says which side had
// none.
func (a *Analyzer) queryRange(ctx context.Context, rq RangeQuerier, query string, w Range) ([]Point, error) {
	start := time.Now()
	points, err := rq.QueryRange(ctx, query, w)
	if a.Observe != nil {
		if p, ok := rq.(Provider); ok {
			a.Observe(KindOf(p), time.Since(start), err)
		}
	}
	switch {
	case errors.Is(err, ErrNoValues):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("query failed: %w (%s)", err, OneLine(query))
	}
	return points, nil
}

// aligned returns the values of a and b at the times where both have one.
func aligned(a, b []Point) ([]float64, []float64) {
	at := make(map[int64]float64, len(b))
	for _, p := range b {
		at[p.Time.UnixMilli()] = p.Value
	}
	var av, bv []float64
	for _, p := range a {
		if v, ok := at[p.Time.UnixMilli()]; ok {
			av = append(av, p.Value)
			bv = append(bv, v)
		}
	}
	return av, bv
}

// compareWindow is the range a comparison looks at: from the start of the
// current analysis (when the Canary entered Progressing) until now, one
// step per metric interval, so that no two samples share data. The first
// sample is the first whole interval of the analysis. Outside an analysis,
// or for a very long one, the window is the last maxComparePoints
// intervals.
func compareWindow(cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric, now time.Time) (Range, error) {
	interval := m.Interval
	if interval == "" {
		interval = DefaultInterval
	}
	step, err := time.ParseDuration(interval)
	if err != nil || step < time.Second {
		return Range{}, fmt.Errorf("the metric interval %q must be a duration of at least 1s", interval)
	}
	step = step.Truncate(time.Second)
	begin := now.Add(-maxComparePoints * step)
	switch cd.Status.Phase {
	case flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaitingPromotion:
		if t := cd.Status.LastTransitionTime.Time; t.After(begin) {
			begin = t
		}
	}
	return Range{Start: begin.Add(step), End: now, Step: step}, nil
}

// renamedTarget returns a copy of cd whose target carries suffix, with the
// Service, Ingress and route names the query model derives from the
// target kept as they were, so that only {{ target }} changes.
func renamedTarget(cd *flaggerv1beta1.Canary, suffix string) *flaggerv1beta1.Canary {
	out := cd.DeepCopy()
	target := cd.Spec.TargetRef.Name
	out.Spec.TargetRef.Name = target + suffix
	if out.Spec.Service.Name == "" {
		out.Spec.Service.Name = target
	}
	if out.Spec.IngressRef == nil {
		out.Spec.IngressRef = &flaggerv1beta1.IngressReference{}
	}
	if out.Spec.IngressRef.Name == "" {
		out.Spec.IngressRef.Name = target
	}
	if out.Spec.RouteRef == nil {
		out.Spec.RouteRef = &flaggerv1beta1.RouteReference{}
	}
	if out.Spec.RouteRef.Name == "" {
		out.Spec.RouteRef.Name = target
	}
	return out
}

// judgeConfig translates a compare block into the judge's configuration.
func judgeConfig(c *flaggerv1beta1.CanaryCompare) judge.Config {
	cfg := judge.Config{Direction: judge.Direction(c.Direction)}
	if c.Confidence != nil {
		cfg.Confidence = *c.Confidence
	}
	if c.AllowedIncrease != nil {
		cfg.AllowedIncrease = *c.AllowedIncrease
	}
	if c.AllowedDecrease != nil {
		cfg.AllowedDecrease = *c.AllowedDecrease
	}
	if c.MinSamples != nil {
		cfg.MinSamples = int(*c.MinSamples)
	}
	return cfg
}

// comparisonStatus records a judge's result in the status, leaving out
// the numbers that are not finite.
func comparisonStatus(res judge.Result, test flaggerv1beta1.CompareTest, against flaggerv1beta1.CompareAgainst) *flaggerv1beta1.CanaryComparison {
	side := func(s judge.Summary) flaggerv1beta1.ComparedSample {
		out := flaggerv1beta1.ComparedSample{Count: finiteOrNil(s.N), Mean: finiteOrNil(s.Mean)}
		if test == flaggerv1beta1.CompareProportion {
			out.Events = finiteOrNil(s.Events)
		} else {
			out.Median = finiteOrNil(s.Median)
		}
		return out
	}
	return &flaggerv1beta1.CanaryComparison{
		Verdict: string(res.Verdict), Test: test, Against: against,
		Canary: side(res.Canary), Baseline: side(res.Baseline),
		Estimate: finiteOrNil(res.Estimate), Lower: finiteOrNil(res.Lower), Upper: finiteOrNil(res.Upper),
		Confidence: finiteOrNil(res.Confidence), PValue: finiteOrNil(res.PValue), Effect: finiteOrNil(res.Effect),
	}
}

// finiteOrNil returns a pointer to v, or nil when v is NaN or infinite
// (which JSON cannot carry).
func finiteOrNil(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
