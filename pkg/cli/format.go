package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
)

// controllerMinInterval is the shortest analysis interval the controller
// runs: shorter ones are raised to it.
const controllerMinInterval = 10 * time.Second

// defaultDeadline is progressDeadlineSeconds when the spec has none.
const defaultDeadline = 600 * time.Second

// age is how long ago t was, as kubectl prints ages; "-" for no time.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t))
}

// ago is age with " ago", or "in the future" for a clock ahead of ours.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	if t.After(now) {
		return "just now"
	}
	return age(now, t) + " ago"
}

// until says how long until t: "in 4m10s", or "5s ago" when it passed.
func until(now, t time.Time) string {
	if t.Before(now) {
		return duration.HumanDuration(now.Sub(t)) + " ago"
	}
	return "in " + duration.HumanDuration(t.Sub(now))
}

// clock prints a time as UTC wall-clock time, for the watch lines.
func clock(t time.Time) string { return t.UTC().Format("15:04:05") }

// threshold is the number of failed checks that rolls a revision back.
func threshold(cd *flaggerv1beta1.Canary) int32 {
	if cd.Spec.Analysis == nil {
		return 1
	}
	return max(cd.Spec.Analysis.Threshold, 1)
}

// intervalOf is the time between analysis steps, as the controller runs it.
func intervalOf(cd *flaggerv1beta1.Canary) time.Duration {
	d := time.Minute
	if a := cd.Spec.Analysis; a != nil {
		if v, err := time.ParseDuration(a.Interval); err == nil && v > 0 {
			d = v
		}
	}
	return max(d, controllerMinInterval)
}

// deadlineOf is the progress deadline.
func deadlineOf(cd *flaggerv1beta1.Canary) time.Duration {
	if p := cd.Spec.ProgressDeadlineSeconds; p != nil && *p > 0 {
		return time.Duration(*p) * time.Second
	}
	return defaultDeadline
}

// providerOf is the Canary's traffic provider: spec.provider, or the
// controller's default given with --mesh-provider. A bare gatewayapi is
// read as gatewayapi:v1, as the controller does.
func (a *app) providerOf(cd *flaggerv1beta1.Canary) string {
	p := cd.Spec.Provider
	if p == "" {
		p = a.meshProvider
	}
	if p == "gatewayapi" {
		p = flaggerv1beta1.ProviderGatewayAPIV1
	}
	return p
}

// strategyOf is the strategy the controller runs the analysis with.
func strategyOf(cd *flaggerv1beta1.Canary, provider string) statemachine.Strategy {
	return statemachine.StrategyOf(cd.Spec, statemachine.Config{
		MinInterval: controllerMinInterval, SplitsTraffic: provider != flaggerv1beta1.ProviderKubernetes,
	})
}

// number prints a metric value without noise: 99.5, 0.25, 1200.
func number(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// thresholdText is a metric's accepted range: ">= 99", "<= 500",
// "between 1 and 5", or "" without one.
func thresholdText(minV, maxV *float64) string {
	switch {
	case minV != nil && maxV != nil:
		return fmt.Sprintf("between %s and %s", number(*minV), number(*maxV))
	case minV != nil:
		return ">= " + number(*minV)
	case maxV != nil:
		return "<= " + number(*maxV)
	}
	return ""
}

// wrap fits text to width columns: the first line starts with first, the
// others with rest. Words longer than a line stay whole. The result ends
// with a newline.
func wrap(first, rest, text string, width int) string {
	var b strings.Builder
	b.WriteString(first)
	line := len([]rune(first))
	start := true
	for _, w := range strings.Fields(text) {
		n := len([]rune(w))
		switch {
		case start:
		case line+1+n > width:
			b.WriteString("\n" + rest)
			line = len([]rune(rest))
		default:
			b.WriteByte(' ')
			line++
		}
		start = false
		b.WriteString(w)
		line += n
	}
	b.WriteByte('\n')
	return b.String()
}

// truncate cuts a line to width runes, marking the cut with "…".
func truncate(s string, width int) string {
	r := []rune(s)
	if width <= 1 || len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}

// maxWeight is the highest canary weight of a canary release, as the
// controller computes it.
func maxWeight(cd *flaggerv1beta1.Canary) int32 {
	a := cd.Spec.Analysis
	if a == nil {
		return 100
	}
	m := int32(100)
	if a.MaxWeight != nil {
		m = *a.MaxWeight
	}
	if n := len(a.StepWeights); n > 0 {
		m = min(100, a.StepWeights[n-1])
		if a.MaxWeight != nil {
			m = min(m, *a.MaxWeight)
		}
	}
	return m
}

// weightSteps returns the weights a canary release still goes through
// after current, up to the maximum.
func weightSteps(cd *flaggerv1beta1.Canary, current int32) []int32 {
	a, top := cd.Spec.Analysis, maxWeight(cd)
	var out []int32
	for w := current; w < top; {
		next := top
		switch {
		case a != nil && len(a.StepWeights) > 0:
			for _, s := range a.StepWeights {
				if s > w {
					next = min(s, top)
					break
				}
			}
		case a != nil && a.StepWeight != nil && *a.StepWeight > 0:
			next = min(w+*a.StepWeight, top)
		}
		out = append(out, next)
		w = next
	}
	return out
}

// iterationsOf is the number of iterations of an A/B or blue/green
// analysis; 0 for a canary release.
func iterationsOf(v *view) int32 {
	if v.strategy == statemachine.CanaryRelease {
		return 0
	}
	if a := v.cd.Spec.Analysis; a != nil && a.Iterations != nil && *a.Iterations > 0 {
		return *a.Iterations
	}
	return 10 // a canary release on a router that cannot split traffic runs 10 blue/green iterations
}
