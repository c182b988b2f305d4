package judge

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// MannWhitney compares a canary's samples of a continuous metric (latency,
// CPU, queue length, one value per time step) with the baseline's.
//
// Values that are NaN or infinite are dropped first. A side left empty is
// NoData; a side with fewer than cfg.MinSamples values is Inconclusive
// (with the statistics computed so far).
// Identical samples pass. Otherwise the Wilcoxon rank-sum test gives the
// p-value, the Hodges-Lehmann estimate gives the shift (canary minus
// baseline) with its confidence interval, and the result is High when the
// whole interval lies above tolerance × |estimate| and the ratio of the
// means reaches cfg.AllowedIncrease, Low in the mirror case, Pass
// otherwise.
func MannWhitney(canary, baseline []float64, cfg Config) Result {
	cfg = cfg.withDefaults(DefaultMinSamples)
	c, b := finite(canary), finite(baseline)
	r := Result{
		Canary: describe(c), Baseline: describe(b),
		Confidence: cfg.Confidence, Direction: cfg.Direction,
		Estimate: math.NaN(), Lower: math.NaN(), Upper: math.NaN(), PValue: math.NaN(), Statistic: math.NaN(),
	}
	r.Effect = ratio(r.Canary.Mean, r.Baseline.Mean)
	if reason := missing(len(c), len(b), "samples"); reason != "" {
		r.Verdict, r.Reason = NoData, reason
		return r
	}
	r.Statistic, _, r.PValue = RankSum(c, b)
	r.Estimate, r.Lower, r.Upper = HodgesLehmann(c, b, cfg.Confidence)
	if len(c) < cfg.MinSamples || len(b) < cfg.MinSamples {
		r.Verdict = Inconclusive
		r.Reason = fmt.Sprintf("too few samples to judge: %d from the canary and %d from the baseline, %d needed on each side",
			len(c), len(b), cfg.MinSamples)
		return r
	}
	if slices.Equal(sorted(c), sorted(b)) {
		r.Verdict, r.Reason = Pass, "the canary's samples are the same as the baseline's"
		return r
	}
	band := cfg.Tolerance * math.Abs(r.Estimate)
	classify(&r, r.Lower > band, r.Upper < -band, cfg, "mean")
	return r
}

// RankSum is the Wilcoxon rank-sum (Mann-Whitney U) test of x against y
// with the normal approximation, corrected for ties and for continuity,
// as R's wilcox.test(x, y, exact = FALSE, correct = TRUE) computes it. It
// returns U, the number of pairs (xi, yj) with xi > yj plus half the ties
// (R's W); z; and the two-sided p-value. When every value is tied, z is 0
// and the p-value 1.
func RankSum(x, y []float64) (u, z, p float64) {
	n, m := float64(len(x)), float64(len(y))
	type obs struct {
		v   float64
		isX bool
	}
	all := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(a, b obs) int { return cmpFloat(a.v, b.v) })
	var rankX, ties float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		t := float64(j - i)
		rank := float64(i+j+1) / 2 // the mean of ranks i+1 .. j
		for k := i; k < j; k++ {
			if all[k].isX {
				rankX += rank
			}
		}
		ties += t*t*t - t
		i = j
	}
	u = rankX - n*(n+1)/2
	sigma := rankSumSigma(n, m, ties)
	if sigma == 0 {
		return u, 0, 1
	}
	z = continuity(u-n*m/2) / sigma
	return u, z, twoSided(z)
}

// HodgesLehmann returns the Hodges-Lehmann estimate of the shift between x
// and y (the median of the differences xi − yj over all pairs) and the
// confidence interval at level conf obtained by inverting the rank-sum
// test with the normal approximation, ties and continuity corrected. The
// bounds are differences xi − yj, the ones R's wilcox.test(x, y,
// conf.int = TRUE, exact = FALSE) converges to.
func HodgesLehmann(x, y []float64, conf float64) (estimate, lower, upper float64) {
	d := make([]float64, 0, len(x)*len(y))
	for _, xi := range x {
		for _, yj := range y {
			d = append(d, xi-yj)
		}
	}
	if len(d) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	slices.SortFunc(d, cmpFloat)
	estimate = median(d)

	// Between two consecutive differences, the rank sum of x − s against y
	// is constant: with i differences at or below s, U = K − i. Ties across
	// the samples happen only at the differences themselves, so the
	// variance there is that of the ties within each sample.
	n, m, k := float64(len(x)), float64(len(y)), len(d)
	sigma := rankSumSigma(n, m, tieTerm(x)+tieTerm(y))
	zq := distuv.UnitNormal.Quantile(1 - (1-conf)/2)
	zAt := func(i int) float64 { return continuity(float64(k)/2-float64(i)) / sigma }
	// The interval's ends are where z falls through +zq and through −zq.
	lower, upper = d[0], d[k-1]
	for i := 1; i <= k; i++ {
		if zAt(i-1) > zq && zAt(i) <= zq {
			lower = d[i-1]
		}
		if zAt(i-1) > -zq && zAt(i) <= -zq {
			upper = d[i-1]
			break
		}
	}
	return estimate, lower, upper
}

// rankSumSigma is the standard deviation of U under the null hypothesis,
// with ties = Σ(t³ − t) over the groups of tied values.
func rankSumSigma(n, m, ties float64) float64 {
	total := n + m
	if total < 2 {
		return 0
	}
	v := n * m / 12 * ((total + 1) - ties/(total*(total-1)))
	if v <= 0 {
		return 0
	}
	return math.Sqrt(v)
}

// tieTerm returns Σ(t³ − t) over the groups of equal values of v.
func tieTerm(v []float64) float64 {
	s := sorted(v)
	var ties float64
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	return ties
}

// continuity moves a deviation from its expectation half a unit towards
// zero (the continuity correction).
func continuity(dev float64) float64 {
	switch {
	case dev > 0:
		return dev - 0.5
	case dev < 0:
		return dev + 0.5
	}
	return 0
}

// twoSided is the two-sided p-value of a standard normal statistic.
func twoSided(z float64) float64 {
	p := 2 * math.Min(distuv.UnitNormal.CDF(z), distuv.UnitNormal.Survival(z))
	return math.Min(p, 1)
}

// describe summarises a sample.
func describe(v []float64) Summary {
	if len(v) == 0 {
		return Summary{Mean: math.NaN(), Median: math.NaN()}
	}
	return Summary{N: float64(len(v)), Mean: stat.Mean(v, nil), Median: median(sorted(v))}
}

// missing says which side has no data, or returns "".
func missing(nc, nb int, what string) string {
	switch {
	case nc == 0 && nb == 0:
		return "neither the canary nor the baseline has " + what
	case nc == 0:
		return "the canary has no " + what
	case nb == 0:
		return "the baseline has no " + what
	}
	return ""
}

// finite returns the values of v that are neither NaN nor infinite.
func finite(v []float64) []float64 {
	out := make([]float64, 0, len(v))
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, x)
		}
	}
	return out
}

// sorted returns a sorted copy of v.
func sorted(v []float64) []float64 {
	s := slices.Clone(v)
	slices.SortFunc(s, cmpFloat)
	return s
}

// median of a sorted, non-empty slice.
func median(s []float64) float64 {
	k := len(s)
	if k%2 == 1 {
		return s[k/2]
	}
	return (s[k/2-1] + s[k/2]) / 2
}

// cmpFloat orders finite floats.
func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
