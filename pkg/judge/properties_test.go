package judge

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomSamples returns two lognormal samples: the first with a median of
// factor × 100, the second with a median of 100.
func randomSamples(rng *rand.Rand, n1, n2 int, factor, sigma float64) ([]float64, []float64) {
	draw := func(n int, median float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Round(median*math.Exp(sigma*rng.NormFloat64())*10) / 10 // 0.1 ms resolution, so ties happen
		}
		return out
	}
	return draw(n1, 100*factor), draw(n2, 100)
}

func TestMannWhitney_SwappingTheSamplesFlipsTheResult(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	flips := map[Verdict]Verdict{High: Low, Low: High, Pass: Pass}
	seen := map[Verdict]int{}
	for i := range 300 {
		shift := []float64{1, 1.1, 1.3, 0.8}[i%4]
		a, b := randomSamples(rng, 10+rng.IntN(20), 10+rng.IntN(20), shift, 0.2)
		ab, ba := MannWhitney(a, b, Config{MinSamples: 10}), MannWhitney(b, a, Config{MinSamples: 10})
		seen[ab.Verdict]++
		if ba.Verdict != flips[ab.Verdict] {
			t.Fatalf("run %d: %s one way, %s the other (%s / %s)", i, ab.Verdict, ba.Verdict, ab.Reason, ba.Reason)
		}
		if ab.Estimate != -ba.Estimate || ab.Lower != -ba.Upper || ab.Upper != -ba.Lower {
			t.Fatalf("run %d: estimate %v [%v, %v] swapped gives %v [%v, %v]", i, ab.Estimate, ab.Lower, ab.Upper, ba.Estimate, ba.Lower, ba.Upper)
		}
		if !near(ab.PValue, ba.PValue, 1e-8) || ab.Statistic+ba.Statistic != ab.Canary.N*ab.Baseline.N {
			t.Fatalf("run %d: p %v vs %v, U %v + %v != %v", i, ab.PValue, ba.PValue, ab.Statistic, ba.Statistic, ab.Canary.N*ab.Baseline.N)
		}
	}
	if seen[High] == 0 || seen[Low] == 0 || seen[Pass] == 0 {
		t.Fatalf("the runs did not cover every verdict: %v", seen)
	}
}

func TestProportions_SwappingTheSidesFlipsTheResult(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	flips := map[Verdict]Verdict{High: Low, Low: High, Pass: Pass}
	seen := map[Verdict]int{}
	for i := range 300 {
		n1, n2 := float64(1000+rng.IntN(4000)), float64(1000+rng.IntN(4000))
		a := Counts{math.Round(n1 * 0.02 * (0.5 + 1.5*rng.Float64())), n1}
		b := Counts{math.Round(n2 * 0.02), n2}
		ab, ba := Proportions(a, b, Config{}), Proportions(b, a, Config{})
		seen[ab.Verdict]++
		if ba.Verdict != flips[ab.Verdict] {
			t.Fatalf("run %d: %s one way, %s the other", i, ab.Verdict, ba.Verdict)
		}
		if !near(ab.Lower, -ba.Upper, 1e-9) || !near(ab.Upper, -ba.Lower, 1e-9) || !near(ab.PValue, ba.PValue, 1e-8) {
			t.Fatalf("run %d: [%v, %v] p %v swapped gives [%v, %v] p %v", i, ab.Lower, ab.Upper, ab.PValue, ba.Lower, ba.Upper, ba.PValue)
		}
	}
	if seen[High] == 0 || seen[Low] == 0 || seen[Pass] == 0 {
		t.Fatalf("the runs did not cover every verdict: %v", seen)
	}
}

func TestMannWhitney_IdenticalSamplesPass(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 100 {
		a, _ := randomSamples(rng, 10+rng.IntN(40), 0, 1, 0.3)
		b := slices.Clone(a)
		rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
		if r := MannWhitney(a, b, Config{MinSamples: 10}); r.Verdict != Pass || r.Estimate != 0 {
			t.Fatalf("run %d: %s, estimate %v (%s)", i, r.Verdict, r.Estimate, r.Reason)
		}
	}
	if r := Proportions(Counts{37, 4000}, Counts{37, 4000}, Config{}); r.Verdict != Pass || r.PValue != 1 {
		t.Fatalf("equal counts: %s p %v", r.Verdict, r.PValue)
	}
}

func TestMannWhitney_ALargeShiftIsHigh(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 100 {
		a, b := randomSamples(rng, 10+rng.IntN(40), 10+rng.IntN(40), 1, 0.3)
		shift := slices.Max(b) - slices.Min(b) + 1
		for j := range a {
			a[j] += 10 * shift
		}
		r := MannWhitney(a, b, Config{Direction: Increase, MinSamples: 10})
		if r.Verdict != High || !r.Bad() || !(r.Lower > 0) {
			t.Fatalf("run %d: %s, interval [%v, %v] (%s)", i, r.Verdict, r.Lower, r.Upper, r.Reason)
		}
	}
}
