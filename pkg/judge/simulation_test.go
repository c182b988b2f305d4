package judge

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// The simulations draw synthetic samples whose truth is known and count
// how often the judge calls the canary bad, at the default confidence of
// 0.98 and the default sample sizes.
//
// Latency model: each sample is one time window's latency, lognormal
// around a median of 100 ms with a log standard deviation sigma (0.15 is
// about 15% spread from window to window); samples are independent. Error
// model: each side's errors are Binomial(requests, rate).

var printTable = flag.Bool("judge.table", false, "print the simulated false-alarm and power table (go test ./pkg/judge -run TestSimulation_Table -v -judge.table)")

const runs = 1000

// latencyBad returns the share of runs in which MannWhitney calls a canary
// whose median is factor × the baseline's bad.
func latencyBad(seed uint64, n int, sigma, factor float64, dir Direction) float64 {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	bad := 0
	for range runs {
		c, b := randomSamples(rng, n, n, factor, sigma)
		if MannWhitney(c, b, Config{Direction: dir, MinSamples: n}).Bad() {
			bad++
		}
	}
	return float64(bad) / runs
}

// errorsBad returns the share of runs in which Proportions calls a canary
// whose error rate is factor × the baseline's bad.
func errorsBad(seed uint64, requests, rate, factor float64, dir Direction) float64 {
	src := rand.NewPCG(seed, uint64(requests))
	bad := 0
	for range runs {
		c := distuv.Binomial{N: requests, P: rate * factor, Src: src}.Rand()
		b := distuv.Binomial{N: requests, P: rate, Src: src}.Rand()
		if Proportions(Counts{c, requests}, Counts{b, requests}, Config{Direction: dir}).Bad() {
			bad++
		}
	}
	return float64(bad) / runs
}

// TestSimulation_FalseAlarmsAndPower checks the targets: without a
// real difference fewer than 2% of 1000 runs fail; a 30% latency
// regression and a doubled error rate are caught in at least 95% of them.
func TestSimulation_FalseAlarmsAndPower(t *testing.T) {
	const sigma = 0.15
	tests := []struct {
		name     string
		bad      float64
		min, max float64
	}{
		{"latency, no difference, direction either", latencyBad(11, DefaultMinSamples, sigma, 1, Either), 0, 0.02},
		{"latency, no difference, direction increase", latencyBad(12, DefaultMinSamples, sigma, 1, Increase), 0, 0.02},
		{"latency 1.3x, direction increase", latencyBad(13, DefaultMinSamples, sigma, 1.3, Increase), 0.95, 1},
		{"errors 5%, no difference, direction increase", errorsBad(14, DefaultMinRequests, 0.05, 1, Increase), 0, 0.02},
		{"errors 5% to 10%, direction increase", errorsBad(15, DefaultMinRequests, 0.05, 2, Increase), 0.95, 1},
		{"errors 1% to 2% with 5000 requests, direction increase", errorsBad(16, 5000, 0.01, 2, Increase), 0.95, 1},
	}
	for _, tt := range tests {
		if tt.bad < tt.min || (tt.max < 1 && tt.bad >= tt.max) {
			t.Errorf("%s: %.1f%% of %d runs failed, want [%.0f%%, %.0f%%)", tt.name, 100*tt.bad, runs, 100*tt.min, 100*tt.max)
		} else {
			t.Logf("%s: %.1f%% of %d runs failed", tt.name, 100*tt.bad, runs)
		}
	}
}

// TestSimulation_Table prints the table quoted in the README.
func TestSimulation_Table(t *testing.T) {
	if !*printTable {
		t.Skip("run with -judge.table to print the table")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nLatency (mannWhitney), %d runs per cell, lognormal windows, share of runs judged bad:\n\n", runs)
	fmt.Fprintln(&b, "| spread (log sd) | samples per side | no difference, either | no difference, increase | 1.1x slower | 1.3x slower | 1.5x slower |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|")
	seed := uint64(100)
	for _, sigma := range []float64{0.1, 0.15, 0.2, 0.3} {
		for _, n := range []int{10, 20, 30, 50} {
			seed++
			fmt.Fprintf(&b, "| %.2f | %d | %s | %s | %s | %s | %s |\n", sigma, n,
				pct(latencyBad(seed, n, sigma, 1, Either)), pct(latencyBad(seed+1000, n, sigma, 1, Increase)),
				pct(latencyBad(seed+2000, n, sigma, 1.1, Increase)), pct(latencyBad(seed+3000, n, sigma, 1.3, Increase)),
				pct(latencyBad(seed+4000, n, sigma, 1.5, Increase)))
		}
	}
	fmt.Fprintf(&b, "\nError rate (proportion), %d runs per cell, binomial errors, share of runs judged bad:\n\n", runs)
	fmt.Fprintln(&b, "| baseline error rate | requests per side | no difference, either | no difference, increase | 1.5x errors | 2x errors |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|")
	for _, rate := range []float64{0.001, 0.01, 0.05} {
		for _, n := range []float64{1000, 5000, 20000} {
			seed++
			fmt.Fprintf(&b, "| %g%% | %.0f | %s | %s | %s | %s |\n", 100*rate, n,
				pct(errorsBad(seed, n, rate, 1, Either)), pct(errorsBad(seed+1000, n, rate, 1, Increase)),
				pct(errorsBad(seed+2000, n, rate, 1.5, Increase)), pct(errorsBad(seed+3000, n, rate, 2, Increase)))
		}
	}
	t.Log(b.String())
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }
