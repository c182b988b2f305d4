package v1beta1

// CanaryCompare turns a metric into a comparison: instead of checking the
// canary's value against fixed thresholds, Sluice runs the metric's query
// for the canary and for the primary over the same window, as range queries
// with one sample per metric interval, and judges with a statistical test
// whether the canary is clearly worse. A Sluice extension.
//
// The query must select the workload with {{ target }}: it is rendered
// once as is (the canary) and once with {{ target }} replaced by
// <target>-primary (or <target>-baseline). Comparison needs a provider
// that answers range queries (prometheus, and the builtin metrics).
type CanaryCompare struct {
	// against is the workload the canary is compared with: primary (the
	// <target>-primary Deployment serving production) or baseline (the
	// <target>-baseline copy of the primary that Sluice starts with the
	// canary and gives the same traffic; needs analysis.baseline: true).
	// Defaults to primary.
	// +kubebuilder:validation:Enum=primary;baseline
	// +optional
	Against CompareAgainst `json:"against,omitempty"`

	// direction is the side on which a difference fails the check:
	// increase (the canary is clearly higher, as for latency or errors),
	// decrease (clearly lower, as for a success rate) or either. Defaults
	// to either.
	// +kubebuilder:validation:Enum=increase;decrease;either
	// +optional
	Direction CompareDirection `json:"direction,omitempty"`

	// test is the statistical test. mannWhitney (the default) compares the
	// two series of values (one per metric interval) with the Wilcoxon
	// rank-sum test and the Hodges-Lehmann interval of the shift, for
	// latencies and other continuous metrics. proportion compares rates of
	// events (errors or successes) with a two-proportion z-test on the
	// counts; the query must then be a ratio written as numerator /
	// denominator, optionally times a number (as the builtin
	// request-success-rate is), both counting requests per second over
	// {{ interval }}.
	// +kubebuilder:validation:Enum=mannWhitney;proportion
	// +optional
	Test CompareTest `json:"test,omitempty"`

	// allowedIncrease is how much higher the canary may be, as the ratio
	// canary ÷ primary of the means (mannWhitney) or of the rates
	// (proportion), before a clear increase fails: 1.2 tolerates up to 20%
	// more. Defaults to 1 (any clear increase counts).
	// +kubebuilder:validation:Minimum=1
	// +optional
	AllowedIncrease *float64 `json:"allowedIncrease,omitempty"`

	// allowedDecrease is how much lower the canary may be, as the same
	// ratio, before a clear decrease fails: 0.8 tolerates up to 20% less.
	// Defaults to 1 (any clear decrease counts).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:ExclusiveMinimum=true
	// +kubebuilder:validation:Maximum=1
	// +optional
	AllowedDecrease *float64 `json:"allowedDecrease,omitempty"`

	// confidence is the two-sided confidence level of the test and the
	// interval, between 0.5 and 1 (exclusive): the higher, the fewer false
	// alarms and the more data needed to see a real difference. Defaults
	// to 0.98.
	// +kubebuilder:validation:Minimum=0.5
	// +kubebuilder:validation:ExclusiveMinimum=true
	// +kubebuilder:validation:Maximum=1
	// +kubebuilder:validation:ExclusiveMaximum=true
	// +optional
	Confidence *float64 `json:"confidence,omitempty"`

	// minSamples is the fewest samples each side needs before the test
	// decides: values (one per metric interval) for mannWhitney, default
	// 20; requests for proportion, default 1000. With fewer the result is
	// inconclusive and follows the metric's onNoData.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:MultipleOf=1
	// +optional
	MinSamples *int32 `json:"minSamples,omitempty"`

	// critical marks a comparison whose failure must roll the canary back
	// at once, whatever the analysis threshold. Defaults to false.
	// +optional
	Critical bool `json:"critical,omitempty"`
}

// CompareAgainst names the workload a canary is compared with.
type CompareAgainst string

// The workloads a canary can be compared with.
const (
	// CompareAgainstPrimary compares with <target>-primary.
	CompareAgainstPrimary CompareAgainst = "primary"
	// CompareAgainstBaseline compares with <target>-baseline.
	CompareAgainstBaseline CompareAgainst = "baseline"
)

// CompareDirection is the side on which a difference fails a comparison.
type CompareDirection string

// The directions of a comparison.
const (
	// CompareIncrease fails a canary that is clearly higher.
	CompareIncrease CompareDirection = "increase"
	// CompareDecrease fails a canary that is clearly lower.
	CompareDecrease CompareDirection = "decrease"
	// CompareEither fails a canary that is clearly different.
	CompareEither CompareDirection = "either"
)

// CompareTest is the statistical test of a comparison.
type CompareTest string

// The statistical tests.
const (
	// CompareMannWhitney is the Wilcoxon rank-sum test on two series.
	CompareMannWhitney CompareTest = "mannWhitney"
	// CompareProportion is the two-proportion z-test on counts.
	CompareProportion CompareTest = "proportion"
)

// CanaryComparison is what a comparison found: the verdict and the
// statistics it rests on. Numbers that are not finite (a ratio with a
// zero denominator) are left out; the check's message states them.
type CanaryComparison struct {
	// verdict is Pass, High (the canary is clearly higher), Low (clearly
	// lower), NoData (a side has no data) or Inconclusive (too little).
	// +kubebuilder:validation:Enum=Pass;High;Low;NoData;Inconclusive
	// +required
	Verdict string `json:"verdict"`

	// test is the statistical test that was run.
	// +required
	Test CompareTest `json:"test"`

	// against is the workload the canary was compared with.
	// +required
	Against CompareAgainst `json:"against"`

	// canary describes the canary's sample.
	// +required
	Canary ComparedSample `json:"canary"`

	// baseline describes the sample of the workload compared against.
	// +required
	Baseline ComparedSample `json:"baseline"`

	// estimate is the estimated difference, canary minus baseline: the
	// Hodges-Lehmann shift (mannWhitney) or the difference of the rates
	// (proportion).
	// +optional
	Estimate *float64 `json:"estimate,omitempty"`

	// lower is the lower end of the estimate's confidence interval.
	// +optional
	Lower *float64 `json:"lower,omitempty"`

	// upper is the upper end of the estimate's confidence interval.
	// +optional
	Upper *float64 `json:"upper,omitempty"`

	// confidence is the confidence level of the interval and the test.
	// +optional
	Confidence *float64 `json:"confidence,omitempty"`

	// pValue is the two-sided p-value of the test.
	// +optional
	PValue *float64 `json:"pValue,omitempty"`

	// effect is canary ÷ baseline of the means (mannWhitney) or of the
	// rates (proportion).
	// +optional
	Effect *float64 `json:"effect,omitempty"`
}

// ComparedSample describes one side of a comparison.
type ComparedSample struct {
	// count is the number of values (mannWhitney) or of requests
	// (proportion).
	// +optional
	Count *float64 `json:"count,omitempty"`

	// mean is the mean of the values, or the rate of events (proportion).
	// +optional
	Mean *float64 `json:"mean,omitempty"`

	// median is the median of the values (mannWhitney).
	// +optional
	Median *float64 `json:"median,omitempty"`

	// events is the number of events counted (proportion).
	// +optional
	Events *float64 `json:"events,omitempty"`
}
