package main

import (
	"math"
	"slices"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// rolloutTrace is one Canary's release, read from the status changes the
// benchmark saw.
type rolloutTrace struct {
	Name string `json:"name"`
	// Start is when the benchmark changed the target.
	Start time.Time `json:"start"`
	// Progressing is when the Canary was first seen Progressing after
	// Start; zero if never.
	Progressing time.Time `json:"progressing"`
	// End is when it was first seen Succeeded or Failed after Progressing;
	// zero if not yet.
	End      time.Time `json:"end"`
	EndPhase string    `json:"endPhase"`
	// Steps are the analysis steps: the status changes made while the
	// Canary was Progressing (an iteration, a weight, a failed check, or
	// the move to Promoting, WaitingPromotion or Failed). Each is due one
	// interval after the one before, the first one interval after
	// Progressing.
	Steps []time.Time `json:"steps"`
	// Changes counts every status change from Start to End.
	Changes int `json:"changes"`
	// Promoting is when the Canary was first seen Promoting; zero if
	// never.
	Promoting time.Time `json:"promoting"`
	// CanaryReady is when the target was first seen rolled out with Pods
	// after Progressing, PrimaryReady the primary after Promoting: the
	// control plane's part of the release (see podTime). Zero if never.
	CanaryReady  time.Time `json:"canaryReady"`
	PrimaryReady time.Time `json:"primaryReady"`
}

// traceRollout reads the release that started at start from a Canary's
// status history.
func traceRollout(name string, hist []canaryObs, start time.Time) rolloutTrace {
	t := rolloutTrace{Name: name, Start: start}
	progressing := string(flaggerv1beta1.CanaryPhaseProgressing)
	var prev *canaryObs
	for i := range hist {
		o := &hist[i]
		if o.At.Before(start) {
			prev = o
			continue
		}
		t.Changes++
		switch {
		case t.Progressing.IsZero():
			if o.Phase == progressing {
				t.Progressing = o.At
			}
		case prev != nil && prev.Phase == progressing:
			t.Steps = append(t.Steps, o.At)
		}
		if !t.Progressing.IsZero() && t.Promoting.IsZero() && o.Phase == string(flaggerv1beta1.CanaryPhasePromoting) {
			t.Promoting = o.At
		}
		if !t.Progressing.IsZero() && (o.Phase == string(flaggerv1beta1.CanaryPhaseSucceeded) || o.Phase == string(flaggerv1beta1.CanaryPhaseFailed)) {
			t.End, t.EndPhase = o.At, o.Phase
			return t
		}
		prev = o
	}
	return t
}

// readiness fills in, from the Deployments w saw rolled out, when the
// canary's Pods (after Progressing) and the primary's (after Promoting)
// became ready.
func (t *rolloutTrace) readiness(w *watcher) {
	if !t.Progressing.IsZero() {
		t.CanaryReady = w.podsReadyAfter(t.Name, t.Progressing)
	}
	if !t.Promoting.IsZero() {
		t.PrimaryReady = w.podsReadyAfter(t.Name+"-primary", t.Promoting)
	}
}

// podTime is the part of a promoted release the control plane spent
// making Pods ready: the canary's, from Progressing (when the controller
// scales the target up), and the primary's, from Promoting (when it copies
// the analysed revision into it). It is false when either is unknown.
func (t rolloutTrace) podTime() (time.Duration, bool) {
	if t.CanaryReady.IsZero() || t.PrimaryReady.IsZero() {
		return 0, false
	}
	return t.CanaryReady.Sub(t.Progressing) + t.PrimaryReady.Sub(t.Promoting), true
}

// done reports whether the release ended.
func (t rolloutTrace) done() bool { return !t.End.IsZero() }

// lateness is how long after its due time each step happened, negative
// for a step that came early. A step is due an interval after the one
// before, the first an interval after Progressing or, when the canary's
// Pods became ready later than that, when they did: no controller can
// analyse a canary before it runs, and the time the control plane takes to
// make its Pods is the bed's, not the controller's.
func (t rolloutTrace) lateness(interval time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(t.Steps))
	prev := t.Progressing
	for i, s := range t.Steps {
		due := prev.Add(interval)
		if i == 0 && t.CanaryReady.After(due) {
			due = t.CanaryReady
		}
		out = append(out, s.Sub(due))
		prev = s
	}
	return out
}

// summary is the distribution of a set of durations, in seconds.
type summary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// summarize returns the median, the 99th percentile (nearest rank) and the
// maximum of ds.
func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(i, 0)].Seconds()
	}
	return summary{Count: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1].Seconds()}
}
