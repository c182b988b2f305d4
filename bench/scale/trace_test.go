package main

import (
	"slices"
	"testing"
	"time"
)

func TestTraceRollout(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	obs := func(s float64, phase string, it, failed int32) canaryObs {
		return canaryObs{At: at(s), Phase: phase, Iterations: it, FailedChecks: failed}
	}
	tests := []struct {
		name      string
		hist      []canaryObs
		start     time.Time
		wantSteps []float64
		wantEnd   string
		wantLate  []float64
		changes   int
	}{{
		name: "steps on time, promotion one interval after the last iteration",
		hist: []canaryObs{
			obs(-60, "Initialized", 0, 0),
			obs(1, "Progressing", 0, 0),
			obs(11, "Progressing", 1, 0),
			obs(21, "Progressing", 2, 0),
			obs(31, "Progressing", 3, 0),
			obs(41, "Promoting", 0, 0),
			obs(43, "Finalising", 0, 0),
			obs(45, "Succeeded", 0, 0),
		},
		start:     at(0),
		wantSteps: []float64{11, 21, 31, 41},
		wantEnd:   "Succeeded",
		wantLate:  []float64{0, 0, 0, 0},
		changes:   7,
	}, {
		name: "a late step and an early first one",
		hist: []canaryObs{
			obs(-60, "Succeeded", 0, 0),
			obs(1, "Progressing", 0, 0),
			obs(1.5, "Progressing", 1, 0),
			obs(14, "Progressing", 2, 0),
			obs(24, "Promoting", 0, 0),
			obs(30, "Succeeded", 0, 0),
		},
		start:     at(0),
		wantSteps: []float64{1.5, 14, 24},
		wantEnd:   "Succeeded",
		wantLate:  []float64{-9.5, 2.5, 0},
		changes:   5,
	}, {
		name: "rolled back on the second failed check",
		hist: []canaryObs{
			obs(-5, "Initialized", 0, 0),
			obs(2, "Progressing", 0, 0),
			obs(12, "Progressing", 0, 1),
			obs(22, "Failed", 0, 2),
		},
		start:     at(0),
		wantSteps: []float64{12, 22},
		wantEnd:   "Failed",
		wantLate:  []float64{0, 0},
		changes:   3,
	}, {
		name: "the end of an earlier release is not this one's",
		hist: []canaryObs{
			obs(-30, "Progressing", 1, 0),
			obs(-20, "Succeeded", 0, 0),
			obs(3, "Progressing", 0, 0),
			obs(13, "Progressing", 1, 0),
		},
		start:     at(-25),
		wantSteps: []float64{13},
		wantEnd:   "",
		wantLate:  []float64{0},
		changes:   3,
	}, {
		name:    "not started yet",
		hist:    []canaryObs{obs(-5, "Initialized", 0, 0)},
		start:   at(0),
		wantEnd: "",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := traceRollout("c", tc.hist, tc.start)
			var steps []float64
			for _, s := range tr.Steps {
				steps = append(steps, s.Sub(t0).Seconds())
			}
			if !slices.Equal(steps, tc.wantSteps) {
				t.Errorf("steps at %v, want %v", steps, tc.wantSteps)
			}
			if tr.EndPhase != tc.wantEnd || tr.done() != (tc.wantEnd != "") {
				t.Errorf("ended %q (done %t), want %q", tr.EndPhase, tr.done(), tc.wantEnd)
			}
			var late []float64
			for _, l := range tr.lateness(10 * time.Second) {
				late = append(late, l.Seconds())
			}
			if !slices.Equal(late, tc.wantLate) {
				t.Errorf("lateness %v, want %v", late, tc.wantLate)
			}
			if tr.Changes != tc.changes {
				t.Errorf("%d status changes, want %d", tr.Changes, tc.changes)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Second)
	}
	got := summarize(ds)
	if got != (summary{Count: 200, P50: 100, P99: 198, Max: 200}) {
		t.Errorf("summarize(1..200 s) = %+v", got)
	}
	if got := summarize(nil); got != (summary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
	if got := summarize([]time.Duration{3 * time.Second}); got != (summary{Count: 1, P50: 3, P99: 3, Max: 3}) {
		t.Errorf("summarize(3 s) = %+v", got)
	}
}

func TestFailingOf_PicksATenthSpreadOverTheReleases(t *testing.T) {
	names := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = targetName(i)
		}
		return out
	}
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{1, []string{"t-00000"}},
		{10, []string{"t-00000"}},
		{11, []string{"t-00000", "t-00005"}},
		{100, []string{"t-00000", "t-00010", "t-00020", "t-00030", "t-00040", "t-00050", "t-00060", "t-00070", "t-00080", "t-00090"}},
	} {
		if got := failingOf(names(tc.n)); !slices.Equal(got, tc.want) {
			t.Errorf("failingOf(%d names) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

// The control plane's part of a release is the time from Progressing to
// the canary's Pods ready plus from Promoting to the primary's; what is
// left beyond the nominal time is the controller's. Roll-outs with no
// replicas (the parked target given a new image) or from before the
// release do not count.
func TestRolloutTrace_PodTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	w := &watcher{rolled: map[string]map[int64]rolledObs{
		"t-1": {
			1: {At: at(-100), Replicas: 1}, // before the release
			2: {At: at(0.1), Replicas: 0},  // new image while parked
			3: {At: at(4), Replicas: 1},    // scaled up by the controller
			4: {At: at(50), Replicas: 0},   // parked again
		},
		"t-1-primary": {
			1: {At: at(-90), Replicas: 1},
			2: {At: at(44), Replicas: 1}, // the promoted revision
		},
	}}
	hist := []canaryObs{
		{At: at(-60), Phase: "Initialized"},
		{At: at(1), Phase: "Progressing"},
		{At: at(5), Phase: "Progressing", Iterations: 1},
		{At: at(15), Phase: "Progressing", Iterations: 2},
		{At: at(25), Phase: "Progressing", Iterations: 3},
		{At: at(35), Phase: "Promoting"},
		{At: at(45), Phase: "Finalising"},
		{At: at(46), Phase: "Succeeded"},
	}
	tr := traceRollout("t-1", hist, at(0))
	tr.readiness(w)
	if !tr.CanaryReady.Equal(at(4)) || !tr.PrimaryReady.Equal(at(44)) || !tr.Promoting.Equal(at(35)) {
		t.Fatalf("canary ready %v, primary ready %v, promoting %v; want +4s, +44s, +35s", tr.CanaryReady.Sub(t0), tr.PrimaryReady.Sub(t0), tr.Promoting.Sub(t0))
	}
	pods, ok := tr.podTime()
	if !ok || pods != 12*time.Second {
		t.Fatalf("podTime = %v, %v; want 3s + 9s", pods, ok)
	}
	var res rolloutResult
	res.addTraces([]rolloutTrace{tr}, at(0), 10*time.Second, 30*time.Second, nil)
	if res.BeyondSeconds.Max != 4 || res.PodSeconds.Max != 12 {
		t.Errorf("beyond %v s, pods %v s; want 46 - 30 - 12 = 4 s and 12 s", res.BeyondSeconds.Max, res.PodSeconds.Max)
	}
	// A release that waited for a slow webhook at each step is not the
	// controller's own time.
	var withSlow rolloutResult
	withSlow.addTraces([]rolloutTrace{tr}, at(0), 10*time.Second, 30*time.Second, map[string]bool{"t-1": true})
	if withSlow.BeyondSeconds.Count != 0 || withSlow.RolloutSeconds.Count != 1 {
		t.Errorf("with a slow webhook: %d beyond, %d releases; want 0 and 1", withSlow.BeyondSeconds.Count, withSlow.RolloutSeconds.Count)
	}

	unfinished := traceRollout("t-1", hist[:6], at(0))
	unfinished.readiness(&watcher{rolled: map[string]map[int64]rolledObs{}})
	if _, ok := unfinished.podTime(); ok {
		t.Error("podTime known without the Pods seen ready")
	}
}

// The first step cannot come before the canary's Pods are ready: when the
// control plane took longer than the interval to make them, the step is due
// when they became ready, and only the controller's delay after that is
// lateness.
func TestRolloutTrace_FirstStepIsDueWhenTheCanaryIsReady(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tr := rolloutTrace{Progressing: at(1), Steps: []time.Time{at(25.5), at(36)}}
	for _, tc := range []struct {
		name  string
		ready time.Time
		want  []time.Duration
	}{
		{"Pods ready after the interval", at(25), []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}},
		{"Pods ready within the interval", at(5), []time.Duration{14500 * time.Millisecond, 500 * time.Millisecond}},
		{"readiness unknown", time.Time{}, []time.Duration{14500 * time.Millisecond, 500 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := tr
			tr.CanaryReady = tc.ready
			if got := tr.lateness(10 * time.Second); !slices.Equal(got, tc.want) {
				t.Errorf("lateness %v, want %v", got, tc.want)
			}
		})
	}
}
