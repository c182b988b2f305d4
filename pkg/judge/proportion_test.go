package judge

import (
	"math"
	"strings"
	"testing"
)

// TestNewcombe_MatchesPublishedIntervals checks the hybrid score interval
// against the four examples of Newcombe, R. G. (1998), "Interval
// estimation for the difference between independent proportions:
// comparison of eleven methods", Statistics in Medicine 17, 873-890,
// Table II, method 10, 95% intervals given to four decimals.
func TestNewcombe_MatchesPublishedIntervals(t *testing.T) {
	tests := []struct {
		x1, n1, x2, n2 float64
		lo, hi         float64
	}{
		{56, 70, 48, 80, 0.0524, 0.3339},
		{9, 10, 3, 10, 0.1705, 0.8090},
		{6, 7, 2, 7, 0.0582, 0.8062},
		{5, 56, 0, 29, -0.0381, 0.1926},
	}
	for _, tt := range tests {
		lo, hi := Newcombe(tt.x1, tt.n1, tt.x2, tt.n2, 0.95)
		if math.Abs(lo-tt.lo) > 5e-5 || math.Abs(hi-tt.hi) > 5e-5 {
			t.Errorf("%v/%v − %v/%v: [%.5f, %.5f], published [%.4f, %.4f]", tt.x1, tt.n1, tt.x2, tt.n2, lo, hi, tt.lo, tt.hi)
		}
	}
}

// TestTwoProportionZ_MatchesR compares z² and the p-value with Pearson's
// chi-square test of R 4.2.2:
//
//	prop.test(c(x1, x2), c(n1, n2), correct = FALSE)  # X-squared, p-value
func TestTwoProportionZ_MatchesR(t *testing.T) {
	tests := []struct {
		x1, n1, x2, n2 float64
		chi2, p        float64
	}{
		{56, 70, 48, 80, 7.023411371, 0.008045081368},
		{9, 10, 3, 10, 7.5, 0.006169899321},
		{5, 56, 0, 29, 2.751116071, 0.09718656817},
		{30, 1000, 12, 1000, 7.879760689, 0.004999109504},
		{7, 5000, 0, 5000, 7.004903432, 0.008128675834}, // a baseline without errors
		{120, 2000, 100, 2000, 1.924001924, 0.1654161612},
	}
	for _, tt := range tests {
		z, p := TwoProportionZ(tt.x1, tt.n1, tt.x2, tt.n2)
		if !near(z*z, tt.chi2, 1e-9) || !near(p, tt.p, 1e-9) {
			t.Errorf("%v/%v vs %v/%v: z² %.10g p %.10g, R: %.10g, %.10g", tt.x1, tt.n1, tt.x2, tt.n2, z*z, p, tt.chi2, tt.p)
		}
		if (tt.x1/tt.n1 > tt.x2/tt.n2) != (z > 0) {
			t.Errorf("%v/%v vs %v/%v: z = %v has the wrong sign", tt.x1, tt.n1, tt.x2, tt.n2, z)
		}
	}
}

func TestProportions_Verdicts(t *testing.T) {
	tests := []struct {
		name           string
		canary, base   Counts
		cfg            Config
		want           Verdict
		bad            bool
		reasonContains string
	}{
		{name: "errors doubled", canary: Counts{100, 2000}, base: Counts{50, 2000}, cfg: Config{Direction: Increase}, want: High, bad: true},
		{name: "baseline without errors", canary: Counts{12, 5000}, base: Counts{0, 5000}, cfg: Config{Direction: Increase}, want: High, bad: true},
		{name: "baseline without errors, few canary errors", canary: Counts{2, 5000}, base: Counts{0, 5000}, cfg: Config{Direction: Increase}, want: Pass},
		{name: "no errors anywhere", canary: Counts{0, 5000}, base: Counts{0, 5000}, want: Pass},
		{name: "same rate", canary: Counts{50, 2000}, base: Counts{52, 2100}, want: Pass, reasonContains: "no clear difference"},
		{name: "success rate dropped", canary: Counts{1900, 2000}, base: Counts{1990, 2000}, cfg: Config{Direction: Decrease}, want: Low, bad: true},
		{name: "success rate rose, direction decrease", canary: Counts{1990, 2000}, base: Counts{1900, 2000}, cfg: Config{Direction: Decrease}, want: High},
		{name: "doubled but 3x allowed", canary: Counts{100, 2000}, base: Counts{50, 2000}, cfg: Config{AllowedIncrease: 3}, want: Pass, reasonContains: "allowed increase"},
		{name: "little traffic", canary: Counts{10, 200}, base: Counts{1, 5000}, want: Inconclusive, reasonContains: "200 requests to the canary"},
		{name: "no canary traffic", canary: Counts{0, 0}, base: Counts{1, 5000}, want: NoData, reasonContains: "canary has no requests"},
		{name: "events above total are clamped", canary: Counts{2100, 2000}, base: Counts{1000, 2000}, want: High, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Proportions(tt.canary, tt.base, tt.cfg)
			if r.Verdict != tt.want || r.Bad() != tt.bad {
				t.Fatalf("verdict %s bad %v (%s); want %s, %v", r.Verdict, r.Bad(), r.Reason, tt.want, tt.bad)
			}
			if tt.reasonContains != "" && !strings.Contains(r.Reason, tt.reasonContains) {
				t.Errorf("reason %q does not say %q", r.Reason, tt.reasonContains)
			}
			if r.Decided() && r.Verdict != Pass && !(r.Lower <= r.Estimate && r.Estimate <= r.Upper) {
				t.Errorf("estimate %v outside its interval [%v, %v]", r.Estimate, r.Lower, r.Upper)
			}
		})
	}
}

func TestProportions_ZeroBaselineEffectIsInfinite(t *testing.T) {
	r := Proportions(Counts{12, 5000}, Counts{0, 5000}, Config{AllowedIncrease: 10})
	if !math.IsInf(r.Effect, 1) || r.Verdict != High {
		t.Fatalf("effect %v verdict %s (%s); want +Inf and High even with allowedIncrease 10", r.Effect, r.Verdict, r.Reason)
	}
	if r.Baseline.Events != 0 || r.Canary.Events != 12 || r.Canary.N != 5000 {
		t.Errorf("summaries: %+v %+v", r.Canary, r.Baseline)
	}
}
