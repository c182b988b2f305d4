package judge

import (
	"fmt"
	"math"
)

// Direction says which differences matter for a metric.
type Direction string

// The directions of a comparison.
const (
	// Increase: only a canary that is higher than the baseline is bad, as
	// for latency or errors.
	Increase Direction = "increase"
	// Decrease: only a canary that is lower is bad, as for a success rate or
	// throughput.
	Decrease Direction = "decrease"
	// Either: a difference either way is bad.
	Either Direction = "either"
)

// Verdict is the classification of one comparison.
type Verdict string

// The verdicts.
const (
	// Pass: no difference that is both clear and large enough.
	Pass Verdict = "Pass"
	// High: the canary is clearly higher than the baseline.
	High Verdict = "High"
	// Low: the canary is clearly lower than the baseline.
	Low Verdict = "Low"
	// NoData: one side has no data at all.
	NoData Verdict = "NoData"
	// Inconclusive: there is data, but too little to decide (fewer samples
	// or requests than the minimum).
	Inconclusive Verdict = "Inconclusive"
)

// Defaults of Config.
const (
	// DefaultConfidence is the confidence level of the interval and the
	// test: a two-sided 98%, as Kayenta's judge uses.
	DefaultConfidence = 0.98
	// DefaultTolerance is the half-width of the band around zero, as a
	// fraction of the shift estimate, that the interval must lie beyond.
	DefaultTolerance = 0.25
	// DefaultMinSamples is the fewest samples each side needs for
	// MannWhitney.
	DefaultMinSamples = 20
	// DefaultMinRequests is the fewest requests each side needs for
	// Proportions.
	DefaultMinRequests = 1000
)

// Config tunes a comparison. The zero value means every default.
type Config struct {
	// Direction says which differences are bad. Empty means Either.
	Direction Direction
	// Confidence is the confidence level, strictly between 0.5 and 1.
	// Zero means DefaultConfidence.
	Confidence float64
	// AllowedIncrease is the effect size (canary ÷ baseline) a High result
	// must reach: 1.1 lets the canary be up to 10% higher. Zero means 1.
	AllowedIncrease float64
	// AllowedDecrease is the effect size a Low result must fall to: 0.9
	// lets the canary be up to 10% lower. Zero means 1.
	AllowedDecrease float64
	// Tolerance is the band around zero, as a fraction of the absolute
	// shift estimate, that the interval must lie beyond (MannWhitney). Zero
	// means DefaultTolerance; a negative value means no band.
	Tolerance float64
	// MinSamples is the fewest samples (MannWhitney) or requests
	// (Proportions) each side needs; below it the verdict is Inconclusive.
	// Zero means DefaultMinSamples or DefaultMinRequests.
	MinSamples int
}

// withDefaults fills the zero fields of c.
func (c Config) withDefaults(minSamples int) Config {
	if c.Direction == "" {
		c.Direction = Either
	}
	if c.Confidence == 0 {
		c.Confidence = DefaultConfidence
	}
	if c.AllowedIncrease == 0 {
		c.AllowedIncrease = 1
	}
	if c.AllowedDecrease == 0 {
		c.AllowedDecrease = 1
	}
	switch {
	case c.Tolerance == 0:
		c.Tolerance = DefaultTolerance
	case c.Tolerance < 0:
		c.Tolerance = 0
	}
	if c.MinSamples <= 0 {
		c.MinSamples = minSamples
	}
	return c
}

// Validate reports a configuration that cannot be used.
func (c Config) Validate() error {
	switch c.Direction {
	case "", Increase, Decrease, Either:
	default:
		return fmt.Errorf("direction %q is not one of increase, decrease, either", c.Direction)
	}
	if c.Confidence != 0 && !(c.Confidence > 0.5 && c.Confidence < 1) {
		return fmt.Errorf("confidence %g must lie strictly between 0.5 and 1", c.Confidence)
	}
	if c.AllowedIncrease < 0 || c.AllowedDecrease < 0 {
		return fmt.Errorf("allowedIncrease %g and allowedDecrease %g must not be negative", c.AllowedIncrease, c.AllowedDecrease)
	}
	return nil
}

// Summary describes one side's sample.
type Summary struct {
	// N is the number of samples (MannWhitney) or requests (Proportions).
	N float64
	// Mean is the sample mean, or the rate of events (Proportions).
	Mean float64
	// Median is the sample median (MannWhitney only).
	Median float64
	// Events is the number of events counted (Proportions only).
	Events float64
}

// Result is the outcome of one comparison, canary against baseline.
type Result struct {
	// Verdict is the classification.
	Verdict Verdict
	// Reason says in a sentence why.
	Reason string
	// Canary and Baseline describe the two samples.
	Canary, Baseline Summary
	// Estimate is the estimated difference, canary minus baseline: the
	// Hodges-Lehmann shift (MannWhitney) or the difference of the rates
	// (Proportions).
	Estimate float64
	// Lower and Upper bound the confidence interval of Estimate.
	Lower, Upper float64
	// Confidence is the confidence level the interval and test used.
	Confidence float64
	// PValue is the two-sided p-value of the test.
	PValue float64
	// Statistic is the test statistic: U of the canary sample
	// (MannWhitney) or z (Proportions).
	Statistic float64
	// Effect is the effect size, canary ÷ baseline: the ratio of the means
	// (MannWhitney) or of the rates (Proportions). It is NaN when both are
	// zero and +Inf when only the baseline's is.
	Effect float64
	// Direction is the direction the result was judged for.
	Direction Direction
}

// Bad reports whether the verdict is a difference on the side that the
// direction says is bad: High for increase, Low for decrease, either for
// either.
func (r Result) Bad() bool {
	switch r.Verdict {
	case High:
		return r.Direction != Decrease
	case Low:
		return r.Direction != Increase
	}
	return false
}

// Decided reports whether there was enough data to judge.
func (r Result) Decided() bool { return r.Verdict != NoData && r.Verdict != Inconclusive }

// classify applies the rule shared by both tests to a result whose
// estimate, interval, p-value and effect are set: High when the test found
// the canary higher (up) and the effect reaches allowedIncrease, Low when
// it found it lower (down) and the effect reaches allowedDecrease, Pass
// otherwise. An effect that is NaN (both sides zero) does not block a
// verdict.
func classify(r *Result, up, down bool, cfg Config, what string) {
	switch {
	case up:
		if !math.IsNaN(r.Effect) && r.Effect < cfg.AllowedIncrease {
			r.Verdict = Pass
			r.Reason = fmt.Sprintf("the canary is higher (%s ×%.3g), but within the allowed increase ×%g", what, r.Effect, cfg.AllowedIncrease)
			return
		}
		r.Verdict = High
		r.Reason = fmt.Sprintf("the canary is higher: %s ×%.3g, %s", what, r.Effect, r.interval())
	case down:
		if !math.IsNaN(r.Effect) && r.Effect > cfg.AllowedDecrease {
			r.Verdict = Pass
			r.Reason = fmt.Sprintf("the canary is lower (%s ×%.3g), but within the allowed decrease ×%g", what, r.Effect, cfg.AllowedDecrease)
			return
		}
		r.Verdict = Low
		r.Reason = fmt.Sprintf("the canary is lower: %s ×%.3g, %s", what, r.Effect, r.interval())
	default:
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("no clear difference (%s ×%.3g): %s", what, r.Effect, r.interval())
	}
	if r.Verdict != Pass && !r.Bad() {
		r.Reason += fmt.Sprintf(" (not a failure for direction %s)", r.Direction)
	}
}

// interval describes the estimate and its interval.
func (r Result) interval() string {
	return fmt.Sprintf("difference %.4g (%g%% interval %.4g to %.4g), p-value %.3g",
		r.Estimate, 100*r.Confidence, r.Lower, r.Upper, r.PValue)
}

// ratio returns a ÷ b as an effect size: NaN for 0 ÷ 0, ±Inf for x ÷ 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		switch {
		case a == 0:
			return math.NaN()
		case a > 0:
			return math.Inf(1)
		default:
			return math.Inf(-1)
		}
	}
	return a / b
}
