package judge

import (
	"math"
	"strings"
	"testing"
)

// The reference values below come from R 4.2.2 (Debian's r-base-core),
// an implementation independent of this one:
//
//	w <- wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE, conf.level = conf)
//	w$statistic; w$p.value; w$conf.int; median(outer(x, y, "-"))
//
// R finds the interval's ends with uniroot (tolerance 1e-4) on a step
// function whose steps sit at the differences xi − yj; the exact ends are
// those differences, so the ends are compared to within 2e-4. R's own point
// estimate is a uniroot result somewhere on the flat stretch around the
// median difference; the Hodges-Lehmann estimate compared here is
// median(outer(x, y, "-")).
var rankSumReferences = []struct {
	name         string
	x, y         []float64
	conf         float64
	w, p         float64
	hl, lo, hi   float64
	rLo, rHi     float64 // R's printed interval, before rounding to the differences
	publishedW   float64 // a textbook's value of W, when there is one
	publishedSrc string
}{
	{
		// Permeability constants of the human chorioamnion at term (x) and
		// at 12 to 26 weeks (y): Hollander & Wolfe (1973), Nonparametric
		// Statistical Methods, p. 69, the example of R's ?wilcox.test,
		// which publishes W = 35.
		name: "Hollander-Wolfe p.69, 98%",
		x:    []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46},
		y:    []float64{1.15, 0.88, 0.90, 0.74, 1.21},
		conf: 0.98, w: 35, p: 0.2446236051, hl: 0.305,
		rLo: -0.3199972132, rHi: 0.9899461821,
		publishedW: 35, publishedSrc: "Hollander & Wolfe (1973) p. 69",
	},
	{
		name: "Hollander-Wolfe p.69, 95%",
		x:    []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46},
		y:    []float64{1.15, 0.88, 0.90, 0.74, 1.21},
		conf: 0.95, w: 35, p: 0.2446236051, hl: 0.305,
		rLo: -0.1500148372, rHi: 0.7599427653,
	},
	{
		// Many ties within and across the samples.
		name: "ties",
		x:    []float64{12, 15, 15, 18, 20, 20, 20, 25, 30, 31, 33},
		y:    []float64{10, 11, 12, 12, 15, 16, 18, 18, 19, 22},
		conf: 0.98, w: 86, p: 0.03085093291, hl: 5.5,
		rLo: -1.715289391e-05, rHi: 13.99996292,
	},
	{
		name: "ties, swapped",
		x:    []float64{10, 11, 12, 12, 15, 16, 18, 18, 19, 22},
		y:    []float64{12, 15, 15, 18, 20, 20, 20, 25, 30, 31, 33},
		conf: 0.98, w: 24, p: 0.03085093291, hl: -5.5,
		rLo: -13.99996292, rHi: 1.715289391e-05,
	},
	{
		// set.seed(23); x <- round(rlnorm(20, log(130), 0.2)); y <- round(rlnorm(15, log(100), 0.2))
		name: "latencies 130 vs 100 ms, 98%",
		x:    []float64{135, 119, 156, 186, 159, 162, 123, 159, 131, 178, 136, 105, 123, 143, 102, 138, 117, 119, 115, 168},
		y:    []float64{118, 89, 117, 79, 90, 100, 90, 128, 88, 103, 90, 102, 80, 78, 96},
		conf: 0.98, w: 283, p: 9.895107695e-06, hl: 40.5,
		rLo: 24.00003928, rHi: 60.00005974,
	},
	{
		name: "latencies 130 vs 100 ms, 90%",
		x:    []float64{135, 119, 156, 186, 159, 162, 123, 159, 131, 178, 136, 105, 123, 143, 102, 138, 117, 119, 115, 168},
		y:    []float64{118, 89, 117, 79, 90, 100, 90, 128, 88, 103, 90, 102, 80, 78, 96},
		conf: 0.90, w: 283, p: 9.895107695e-06, hl: 40.5,
		rLo: 28.99995735, rHi: 54.0000015,
	},
	{
		// then x2 <- round(rnorm(12, 5, 1), 1); y2 <- round(rnorm(12, 5, 1), 1)
		name: "same distribution, 99%",
		x:    []float64{5.2, 6.3, 3.7, 5.9, 5.2, 6, 6.3, 5.9, 4, 3.8, 3.4, 5.1},
		y:    []float64{5, 5.5, 4.8, 6.3, 4.8, 3, 5.7, 6.2, 4.1, 4.4, 5.3, 6},
		conf: 0.99, w: 72.5, p: 1, hl: 0,
		rLo: -1.300018355, rHi: 1.100083611,
	},
}

func TestRankSumAndHodgesLehmann_MatchR(t *testing.T) {
	for _, tt := range rankSumReferences {
		t.Run(tt.name, func(t *testing.T) {
			u, _, p := RankSum(tt.x, tt.y)
			if u != tt.w {
				t.Errorf("U = %v, R's W = %v", u, tt.w)
			}
			if tt.publishedW != 0 && u != tt.publishedW {
				t.Errorf("U = %v, %s publishes W = %v", u, tt.publishedSrc, tt.publishedW)
			}
			if !near(p, tt.p, 1e-9) {
				t.Errorf("p-value = %.10g, R: %.10g", p, tt.p)
			}
			est, lo, hi := HodgesLehmann(tt.x, tt.y, tt.conf)
			if !near(est, tt.hl, 1e-12) {
				t.Errorf("Hodges-Lehmann estimate = %v, R's median of the differences: %v", est, tt.hl)
			}
			if math.Abs(lo-tt.rLo) > 2e-4 || math.Abs(hi-tt.rHi) > 2e-4 {
				t.Errorf("interval [%v, %v], R: [%.10g, %.10g]", lo, hi, tt.rLo, tt.rHi)
			}
		})
	}
}

// TestHodgesLehmann_ConstantSidesGiveAPointInterval covers a case R refuses
// ("cannot compute confidence interval when all observations are tied"):
// each side constant but different, as a latency metric stuck on one
// histogram bucket is. Every difference is 20, so the interval is [20, 20].
func TestHodgesLehmann_ConstantSidesGiveAPointInterval(t *testing.T) {
	c, b := repeat(60, 10), repeat(40, 12)
	est, lo, hi := HodgesLehmann(c, b, 0.98)
	if est != 20 || lo != 20 || hi != 20 {
		t.Fatalf("estimate %v, interval [%v, %v]; want 20, [20, 20]", est, lo, hi)
	}
	u, z, p := RankSum(c, b)
	// R: wilcox.test(rep(60, 10), rep(40, 12), exact = FALSE) gives W = 120,
	// p-value = 5.50952e-06.
	if u != 120 || !near(p, 5.509520594e-06, 1e-9) || z <= 0 {
		t.Fatalf("U %v, z %v, p %v; want 120, z > 0, 5.509520594e-06", u, z, p)
	}
	if r := MannWhitney(c, b, Config{MinSamples: 10}); r.Verdict != High {
		t.Fatalf("verdict %s (%s), want High", r.Verdict, r.Reason)
	}
}

func TestRankSum_AllTiedIsNoEvidence(t *testing.T) {
	u, z, p := RankSum(repeat(5, 4), repeat(5, 6))
	if u != 12 || z != 0 || p != 1 {
		t.Fatalf("U %v z %v p %v, want 12, 0, 1", u, z, p)
	}
}

func TestMannWhitney_Verdicts(t *testing.T) {
	base := []float64{100, 104, 98, 101, 97, 103, 99, 102, 100, 96, 105, 101}
	scaled := func(f float64) []float64 {
		out := make([]float64, len(base))
		for i, v := range base {
			out[i] = v * f
		}
		return out
	}
	nan := math.NaN()
	tests := []struct {
		name            string
		canary, base    []float64
		cfg             Config
		want            Verdict
		bad, decided    bool
		effectAtLeast   float64
		reasonSubstring string
	}{
		{name: "30% slower", canary: scaled(1.3), base: base, want: High, bad: true, decided: true, effectAtLeast: 1.29},
		{name: "30% faster", canary: scaled(0.7), base: base, want: Low, bad: true, decided: true},
		{name: "30% faster, direction increase", canary: scaled(0.7), base: base, cfg: Config{Direction: Increase},
			want: Low, bad: false, decided: true, reasonSubstring: "not a failure"},
		{name: "30% slower, direction decrease", canary: scaled(1.3), base: base, cfg: Config{Direction: Decrease},
			want: High, bad: false, decided: true},
		{name: "30% slower but 50% allowed", canary: scaled(1.3), base: base, cfg: Config{AllowedIncrease: 1.5},
			want: Pass, decided: true, reasonSubstring: "within the allowed increase"},
		{name: "30% faster but down to 0.6 allowed", canary: scaled(0.7), base: base, cfg: Config{AllowedDecrease: 0.6},
			want: Pass, decided: true, reasonSubstring: "within the allowed decrease"},
		{name: "identical", canary: base, base: base, want: Pass, decided: true, reasonSubstring: "same"},
		{name: "NaNs dropped", canary: append(scaled(1.3), nan, math.Inf(1)), base: append(base, nan), want: High, bad: true, decided: true},
		{name: "empty canary", canary: nil, base: base, want: NoData, reasonSubstring: "canary has no samples"},
		{name: "only NaN in the baseline", canary: base, base: []float64{nan, nan}, want: NoData, reasonSubstring: "baseline has no samples"},
		{name: "too few", canary: scaled(1.3)[:5], base: base, want: Inconclusive, reasonSubstring: "5 from the canary and 12 from the baseline, 10 needed"},
		{name: "too few for the default", canary: scaled(1.3), base: base, cfg: Config{MinSamples: DefaultMinSamples}, want: Inconclusive,
			reasonSubstring: "12 from the canary and 12 from the baseline, 20 needed"},
		{name: "fewer needed", canary: scaled(1.3)[:5], base: base, cfg: Config{MinSamples: 5}, want: High, bad: true, decided: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.MinSamples == 0 {
				cfg.MinSamples = 10
			}
			r := MannWhitney(tt.canary, tt.base, cfg)
			if r.Verdict != tt.want || r.Bad() != tt.bad || r.Decided() != tt.decided {
				t.Fatalf("verdict %s bad %v decided %v (%s); want %s, %v, %v", r.Verdict, r.Bad(), r.Decided(), r.Reason, tt.want, tt.bad, tt.decided)
			}
			if tt.effectAtLeast != 0 && r.Effect < tt.effectAtLeast {
				t.Errorf("effect %v, want at least %v", r.Effect, tt.effectAtLeast)
			}
			if tt.reasonSubstring != "" && !strings.Contains(r.Reason, tt.reasonSubstring) {
				t.Errorf("reason %q does not say %q", r.Reason, tt.reasonSubstring)
			}
		})
	}
}

// TestMannWhitney_ToleranceBandHoldsBackANoisyShift checks Kayenta's
// practical-significance rule: an interval that excludes zero but not the
// band of ±25% of the estimate passes; without the band it is High.
func TestMannWhitney_ToleranceBandHoldsBackANoisyShift(t *testing.T) {
	// Shifted by about +15 with a spread of about ±25: the 98% interval
	// ([2, 27]) is above zero but its lower end is below a quarter of the
	// estimate (15).
	canary := []float64{98, 133, 115, 91, 143, 108, 124, 102, 136, 120, 95, 129, 113, 141, 104, 127, 111, 132, 100, 122}
	base := []float64{90, 115, 100, 80, 125, 95, 110, 85, 120, 105, 82, 118, 98, 122, 91, 112, 96, 116, 86, 107}
	r := MannWhitney(canary, base, Config{})
	if !(r.Lower > 0) || r.Lower > DefaultTolerance*r.Estimate {
		t.Fatalf("this sample should have 0 < lower bound <= 0.25 × estimate: estimate %v, interval [%v, %v]", r.Estimate, r.Lower, r.Upper)
	}
	if r.Verdict != Pass {
		t.Errorf("with the band: %s (%s), want Pass", r.Verdict, r.Reason)
	}
	if r := MannWhitney(canary, base, Config{Tolerance: -1}); r.Verdict != High {
		t.Errorf("without the band: %s (%s), want High", r.Verdict, r.Reason)
	}
}

func TestMannWhitney_ZeroBaselineMeanStillJudged(t *testing.T) {
	// A queue that is always empty on the baseline and not on the canary:
	// the mean ratio is +Inf, which passes every allowed increase.
	r := MannWhitney([]float64{3, 4, 2, 5, 3, 4, 6, 2, 3, 4}, repeat(0, 10), Config{AllowedIncrease: 2, MinSamples: 10})
	if r.Verdict != High || !math.IsInf(r.Effect, 1) {
		t.Fatalf("verdict %s effect %v (%s); want High, +Inf", r.Verdict, r.Effect, r.Reason)
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, c := range []Config{{Direction: "up"}, {Confidence: 0.4}, {Confidence: 1}, {AllowedIncrease: -1}} {
		if c.Validate() == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (Config{Direction: Increase, Confidence: 0.95, AllowedIncrease: 1.2}).Validate(); err != nil {
		t.Error(err)
	}
}

func near(got, want, rel float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-300)
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}
