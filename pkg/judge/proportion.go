package judge

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Counts are the requests of one side and how many of them were events
// (errors, or successes). They are real numbers because they are usually
// rates multiplied by a duration.
type Counts struct {
	// Events is how many requests were events.
	Events float64
	// Total is how many requests there were.
	Total float64
}

// Proportions compares the rate of events (errors or successes) among the
// canary's requests with the baseline's, with the two-proportion z-test on
// the counts.
//
// A side without requests is NoData; a side with fewer requests than
// cfg.MinSamples is Inconclusive (with the statistics so far). Events are clamped to [0, Total]. The
// result is High when the test rejects equal rates at cfg.Confidence, the
// canary's rate is the higher one and the rate ratio reaches
// cfg.AllowedIncrease; Low in the mirror case; Pass otherwise. A baseline
// without any event is fine: the test uses the pooled rate, and the rate
// ratio is then +Inf, which reaches every allowed increase. The interval
// reported for the difference of the rates is Newcombe's hybrid score
// interval, which stays inside [-1, 1] and behaves with zero counts.
func Proportions(canary, baseline Counts, cfg Config) Result {
	cfg = cfg.withDefaults(DefaultMinRequests)
	r := Result{
		Canary: rates(canary), Baseline: rates(baseline),
		Confidence: cfg.Confidence, Direction: cfg.Direction,
		Estimate: math.NaN(), Lower: math.NaN(), Upper: math.NaN(), PValue: math.NaN(), Statistic: math.NaN(),
	}
	r.Effect = ratio(r.Canary.Mean, r.Baseline.Mean)
	if reason := missing(int(math.Ceil(r.Canary.N)), int(math.Ceil(r.Baseline.N)), "requests"); reason != "" {
		r.Verdict, r.Reason = NoData, reason
		return r
	}
	x1, n1, x2, n2 := r.Canary.Events, r.Canary.N, r.Baseline.Events, r.Baseline.N
	r.Estimate = r.Canary.Mean - r.Baseline.Mean
	r.Statistic, r.PValue = TwoProportionZ(x1, n1, x2, n2)
	r.Lower, r.Upper = Newcombe(x1, n1, x2, n2, cfg.Confidence)
	if n1 < float64(cfg.MinSamples) || n2 < float64(cfg.MinSamples) {
		r.Verdict = Inconclusive
		r.Reason = fmt.Sprintf("too little traffic to judge: %.0f requests to the canary and %.0f to the baseline, %d needed on each side",
			n1, n2, cfg.MinSamples)
		return r
	}
	significant := r.PValue < 1-cfg.Confidence
	classify(&r, significant && r.Estimate > 0, significant && r.Estimate < 0, cfg, "rate")
	return r
}

// rates summarises one side's counts, with the events clamped to [0, Total].
func rates(c Counts) Summary {
	total := c.Total
	if math.IsNaN(total) || total < 0 || math.IsInf(total, 0) {
		total = 0
	}
	events := math.Max(0, math.Min(c.Events, total))
	if math.IsNaN(events) {
		events = 0
	}
	s := Summary{N: total, Events: events, Mean: math.NaN(), Median: math.NaN()}
	if total > 0 {
		s.Mean = events / total
	}
	return s
}

// TwoProportionZ is the two-proportion z-test with the pooled rate: x1 of
// n1 against x2 of n2. It returns z (positive when the first rate is the
// higher) and the two-sided p-value; z² is Pearson's chi-square statistic
// of the 2×2 table, as R's prop.test(correct = FALSE) reports it. When
// the pooled rate is 0 or 1 there is nothing to test: z is 0 and the
// p-value 1.
func TwoProportionZ(x1, n1, x2, n2 float64) (z, p float64) {
	pooled := (x1 + x2) / (n1 + n2)
	se := math.Sqrt(pooled * (1 - pooled) * (1/n1 + 1/n2))
	if se == 0 || math.IsNaN(se) {
		return 0, 1
	}
	z = (x1/n1 - x2/n2) / se
	return z, twoSided(z)
}

// Newcombe is the hybrid score interval at level conf for the difference
// x1/n1 − x2/n2 of two independent rates (Newcombe 1998, method 10), built
// from the Wilson score intervals of each rate.
func Newcombe(x1, n1, x2, n2, conf float64) (lower, upper float64) {
	z := distuv.UnitNormal.Quantile(1 - (1-conf)/2)
	p1, p2 := x1/n1, x2/n2
	l1, u1 := Wilson(x1, n1, z)
	l2, u2 := Wilson(x2, n2, z)
	d := p1 - p2
	return d - math.Hypot(p1-l1, u2-p2), d + math.Hypot(u1-p1, p2-l2)
}

// Wilson is the Wilson score interval of the rate x/n for the normal
// quantile z.
func Wilson(x, n, z float64) (lower, upper float64) {
	p := x / n
	z2 := z * z
	centre := (p + z2/(2*n)) / (1 + z2/n)
	half := z / (1 + z2/n) * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	return math.Max(0, centre-half), math.Min(1, centre+half)
}
