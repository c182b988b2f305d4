package statemachine

import (
	"fmt"
	"strings"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Strategy is how a new revision is exposed during its analysis.
type Strategy string

// The strategies, with Flagger's names.
const (
	// CanaryRelease shifts a growing share of traffic to the canary.
	CanaryRelease Strategy = "canary"
	// ABTesting sends the requests that match analysis.match to the canary.
	ABTesting Strategy = "ab-testing"
	// BlueGreen tests the canary without traffic (or with mirrored traffic),
	// then switches all traffic to it before promotion.
	BlueGreen Strategy = "blue-green"
)

// StrategyOf returns the strategy a Canary's analysis runs with.
func StrategyOf(spec flaggerv1beta1.CanarySpec, cfg Config) Strategy {
	return planOf(spec, cfg).strategy
}

// defaultBlueGreenIterations is the number of iterations of a canary that
// asks for traffic shifting on a router that cannot split traffic.
const defaultBlueGreenIterations = 10

// plan is the strategy of a Canary with its derived numbers.
type plan struct {
	strategy   Strategy
	iterations int32 // analysis steps after the first, for A/B and blue/green
	maxWeight  int32
	interval   time.Duration
	threshold  int32
	deadline   time.Duration
	mirror     bool
	// baseline is set when a baseline runs beside the canary during the
	// analysis (analysis.baseline, on a weighted release that is analysed).
	baseline bool
	// downgraded is set when the spec asked for traffic shifting that the
	// router cannot do, so blue/green runs instead.
	downgraded bool
}

func planOf(spec flaggerv1beta1.CanarySpec, cfg Config) plan {
	a := spec.Analysis
	if a == nil {
		a = &flaggerv1beta1.CanaryAnalysis{}
	}
	p := plan{
		interval:  analysisInterval(a.Interval, cfg.MinInterval),
		threshold: max(a.Threshold, 1),
		deadline:  600 * time.Second,
		mirror:    a.Mirror,
		maxWeight: 100,
	}
	if spec.ProgressDeadlineSeconds != nil && *spec.ProgressDeadlineSeconds > 0 {
		p.deadline = time.Duration(*spec.ProgressDeadlineSeconds) * time.Second
	}
	iterations := int32(0)
	if a.Iterations != nil {
		iterations = *a.Iterations
	}
	switch {
	case iterations > 0 && len(a.Match) > 0 && cfg.SplitsTraffic:
		p.strategy, p.iterations = ABTesting, iterations
	case iterations > 0:
		p.strategy, p.iterations = BlueGreen, iterations
	case !cfg.SplitsTraffic:
		p.strategy, p.iterations, p.downgraded = BlueGreen, defaultBlueGreenIterations, true
	default:
		p.strategy = CanaryRelease
		if a.MaxWeight != nil {
			p.maxWeight = *a.MaxWeight
		}
		if n := len(a.StepWeights); n > 0 {
			p.maxWeight = min(100, a.StepWeights[n-1])
			if a.MaxWeight != nil {
				p.maxWeight = min(p.maxWeight, *a.MaxWeight)
			}
		}
	}
	if !cfg.SplitsTraffic {
		p.mirror = false
	}
	p.baseline = a.Baseline && p.strategy == CanaryRelease && !spec.SkipAnalysis
	return p
}

// analysisInterval parses the analysis interval; it is validated by the
// CRD, and a value that still does not parse counts as one minute.
func analysisInterval(s string, minimum time.Duration) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		d = time.Minute
	}
	return max(d, minimum)
}

// nextWeight returns the canary weight after current for the canary
// strategy, never above the maximum weight.
func nextWeight(a *flaggerv1beta1.CanaryAnalysis, maxWeight, current int32) int32 {
	if len(a.StepWeights) > 0 {
		for _, w := range a.StepWeights {
			if w > current {
				return min(w, maxWeight)
			}
		}
		return maxWeight
	}
	step := int32(0)
	if a.StepWeight != nil {
		step = *a.StepWeight
	}
	if step <= 0 {
		return maxWeight
	}
	return min(current+step, maxWeight)
}

// hasHooks reports whether the analysis has webhooks of a type. A webhook
// without a type is a rollout webhook.
func hasHooks(spec flaggerv1beta1.CanarySpec, t flaggerv1beta1.HookType) bool {
	if spec.Analysis == nil {
		return false
	}
	for _, h := range spec.Analysis.Webhooks {
		if h.EffectiveType() == t {
			return true
		}
	}
	return false
}

// gateMuted reports whether every webhook of a gate type asks not to alert
// while it keeps the gate closed (muteAlert).
func gateMuted(spec flaggerv1beta1.CanarySpec, t flaggerv1beta1.HookType) bool {
	muted := false
	for _, h := range spec.Analysis.Webhooks {
		if h.EffectiveType() != t {
			continue
		}
		if !h.MuteAlert {
			return false
		}
		muted = true
	}
	return muted
}

// openHint tells a person how to open a gate served by a load tester: its
// /gate/check address has a /gate/open sibling.
func openHint(in Input, t flaggerv1beta1.HookType) string {
	for _, h := range in.Spec.Analysis.Webhooks {
		if h.EffectiveType() != t || !strings.HasSuffix(h.URL, "/gate/check") {
			continue
		}
		open := strings.TrimSuffix(h.URL, "/check") + "/open"
		return fmt.Sprintf("; open it with: curl -d '{\"name\": %q, \"namespace\": %q}' %s", in.Name, in.Namespace, open)
	}
	return ""
}
