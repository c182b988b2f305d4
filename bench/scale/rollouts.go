package main

import (
	"context"
	"fmt"
	"regexp"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// rolloutResult is phase 3 or 4: M simultaneous releases.
type rolloutResult struct {
	Rollouts int `json:"rollouts"`
	// Failing releases get a failing metric and must be rolled back;
	// SlowHooks have a slow rollout webhook.
	Failing   int `json:"failing"`
	SlowHooks int `json:"slowHooks"`
	// Succeeded and Failed count the releases by how they ended;
	// Unfinished did not end in time.
	Succeeded  int `json:"succeeded"`
	Failed     int `json:"failed"`
	Unfinished int `json:"unfinished"`
	// AllDoneSeconds is the time from the first change to the last
	// release's end; PhaseSeconds the time the phase waited for them
	// (longer only when releases were left unfinished).
	AllDoneSeconds float64 `json:"allDoneSeconds"`
	PhaseSeconds   float64 `json:"phaseSeconds"`
	// RolloutSeconds is each promoted release's time from its change to
	// Succeeded, against NominalSeconds (iterations × interval) and
	// AllowanceSeconds (nominal plus twice the bed's time to roll one
	// Deployment: the canary's Pods and then the primary's).
	RolloutSeconds   summary `json:"rolloutSeconds"`
	NominalSeconds   float64 `json:"nominalSeconds"`
	AllowanceSeconds float64 `json:"allowanceSeconds"`
	// PodSeconds is, per promoted release without a slow webhook, the
	// time the control plane took to make the canary's and then the
	// primary's Pods ready (see rolloutTrace.podTime), and BeyondSeconds
	// what the release took beyond that and its nominal time: the
	// controller's own part.
	PodSeconds    summary `json:"podSeconds"`
	BeyondSeconds summary `json:"beyondSeconds"`
	// Lateness is how late each analysis step came after its due time
	// (zero for a step on time or early), for the Canaries without a slow
	// webhook; LatenessSlow for those with. EarlySteps counts the steps
	// that came more than a second before their due time (a controller
	// that starts the analysis as soon as the canary is ready, instead of
	// one interval after Progressing, makes one per release).
	Lateness     summary `json:"lateness"`
	LatenessSlow summary `json:"latenessSlow"`
	EarlySteps   int     `json:"earlySteps"`
	// Steps and StatusChanges are summed over the releases.
	Steps         int `json:"steps"`
	StatusChanges int `json:"statusChanges"`
	// Requests are all the controller's requests during the phase;
	// Attributed those naming an object of a released Canary (its target,
	// primary, Services, events, the Canary itself).
	Requests   requestCounts `json:"requests"`
	Attributed requestCounts `json:"attributed"`
	// Per release, from Attributed: GETs, writes other than events, and
	// events (the Event objects' counts).
	GetsPerRollout   float64 `json:"getsPerRollout"`
	WritesPerRollout float64 `json:"writesPerRollout"`
	// WritesPerChange is WritesPerRollout over the status changes of a
	// release.
	WritesPerChange  float64 `json:"writesPerChange"`
	EventsPerRollout float64 `json:"eventsPerRollout"`
	CPUSeconds       float64 `json:"cpuSeconds"`
	// Queue is what the controller's workqueue metrics say, if it has
	// them.
	Queue  queueStats     `json:"queue"`
	Traces []rolloutTrace `json:"traces"`
}

// rollouts releases a new image on every target of names at once, with
// the stub failing the metric of those in failing, and measures until
// every release has ended.
func (r *run) rollouts(ctx context.Context, phase string, names, failing []string) (rolloutResult, error) {
	res := rolloutResult{Rollouts: len(names), Failing: len(failing)}
	for _, n := range names {
		if r.slow[n] {
			res.SlowHooks++
		}
	}
	r.stub.SetFailing(failing)
	eventsBefore, err := r.canaryEvents(ctx)
	if err != nil {
		return res, err
	}
	u0, err := r.proc.usage()
	if err != nil {
		return res, err
	}
	r.logf("%s: releasing %d targets (%d failing, %d with a slow webhook)", phase, len(names), len(failing), res.SlowHooks)
	q0, w0, hasQueue, err := scrapeQueue(ctx, r.metricsURL)
	if err != nil {
		return res, err
	}
	begin := time.Now()
	traces, err := r.release(ctx, phase, names)
	if err != nil {
		return res, err
	}
	if hasQueue {
		q1, w1, ok, err := scrapeQueue(ctx, r.metricsURL)
		if err != nil {
			return res, err
		}
		if ok {
			res.Queue = queueDelta(q0, w0, q1, w1)
		}
	}
	end := time.Now()
	res.PhaseSeconds = seconds(end.Sub(begin))
	u1, err := r.proc.usage()
	if err != nil {
		return res, err
	}
	res.CPUSeconds = (u1.CPU - u0.CPU).Seconds()
	nominal := time.Duration(r.cfg.Iterations) * r.cfg.Interval
	res.addTraces(traces, begin, r.cfg.Interval, nominal, r.slow)
	res.NominalSeconds = nominal.Seconds()
	res.AllowanceSeconds = res.NominalSeconds + 2*r.res.Bed.PerRoll.P50

	// Let the last writes and events of the releases reach the logs.
	if err := sleep(ctx, time.Second); err != nil {
		return res, err
	}
	reqs, err := r.audit.between(begin, end.Add(time.Second))
	if err != nil {
		return res, err
	}
	eventsAfter, err := r.canaryEvents(ctx)
	if err != nil {
		return res, err
	}
	events := 0
	for _, n := range names {
		events += eventsAfter[n] - eventsBefore[n]
	}
	res.addRequests(reqs, names, events)
	r.logf("%s: %d Succeeded, %d Failed, %d unfinished; all ended in %.1fs; rollout p50 %.1fs (nominal %.0fs); lateness p50 %.2fs p99 %.2fs max %.2fs",
		phase, res.Succeeded, res.Failed, res.Unfinished, res.AllDoneSeconds, res.RolloutSeconds.P50, res.NominalSeconds,
		res.Lateness.P50, res.Lateness.P99, res.Lateness.Max)
	r.checkReleases(ctx, phase, names, failing, res.Traces)
	return res, nil
}

// release changes the image of every target of names and waits until
// each release has ended, or the phase's time is up (a problem); it
// returns what the watched status changes say of each release.
func (r *run) release(ctx context.Context, phase string, names []string) ([]rolloutTrace, error) {
	if r.prof != nil && phase == "phase 3" {
		// The CPU profile covers a release's analysis; the goroutine dump is
		// taken in the middle of it.
		wait := r.prof.during(ctx, time.Duration(r.cfg.Iterations+1)*r.cfg.Interval, "cpu-rollout.pb.gz", "goroutines-rollout.txt")
		defer func() { wait(); r.res.Profiles = r.prof.files() }()
	}
	starts := make([]time.Time, len(names))
	if err := parallel(ctx, len(names), func(ctx context.Context, i int) error {
		starts[i] = time.Now()
		_, err := setImage(ctx, r.c, namespace, names[i], imageV2)
		return err
	}); err != nil {
		return nil, err
	}
	traces := func() []rolloutTrace {
		out := make([]rolloutTrace, len(names))
		for i, n := range names {
			out[i] = traceRollout(n, r.w.history(n), starts[i])
			out[i].readiness(r.w)
		}
		return out
	}
	ended := func() int {
		c := 0
		for _, t := range traces() {
			if t.done() {
				c++
			}
		}
		return c
	}
	err := waitFor(ctx, r.cfg.rolloutTimeout(), fmt.Sprintf("%d releases ended", len(names)),
		func() bool { return ended() == len(names) },
		func() string { return fmt.Sprintf("%d ended", ended()) })
	if ctx.Err() != nil {
		return nil, err
	}
	switch {
	case err != nil && r.cfg.PhaseTimeout > 0:
		r.logf("%s: unfinished: %d of %d releases ended after %s (-phase-timeout)", phase, ended(), len(names), r.cfg.rolloutTimeout())
	case err != nil:
		r.problem("%s: %v", phase, err)
	}
	return traces(), nil
}

// addTraces counts the releases by outcome and sums up their durations
// and the lateness of their steps; releases began at begin, and a
// promoted one takes nominal at least.
func (res *rolloutResult) addTraces(traces []rolloutTrace, begin time.Time, interval, nominal time.Duration, slow map[string]bool) {
	res.Traces = traces
	var durations, pods, beyond, late, lateSlow []time.Duration
	var last time.Time
	for _, t := range traces {
		switch t.EndPhase {
		case string(flaggerv1beta1.CanaryPhaseSucceeded):
			res.Succeeded++
			durations = append(durations, t.End.Sub(t.Start))
			if p, ok := t.podTime(); ok && !slow[t.Name] {
				pods = append(pods, p)
				beyond = append(beyond, t.End.Sub(t.Start)-nominal-p)
			}
		case string(flaggerv1beta1.CanaryPhaseFailed):
			res.Failed++
		default:
			res.Unfinished++
		}
		if t.End.After(last) {
			last = t.End
		}
		res.Steps += len(t.Steps)
		res.StatusChanges += t.Changes
		for _, l := range t.lateness(interval) {
			if l < -time.Second {
				res.EarlySteps++
			}
			if slow[t.Name] {
				lateSlow = append(lateSlow, max(l, 0))
			} else {
				late = append(late, max(l, 0))
			}
		}
	}
	if !last.IsZero() {
		res.AllDoneSeconds = seconds(last.Sub(begin))
	}
	res.RolloutSeconds = summarize(durations)
	res.PodSeconds, res.BeyondSeconds = summarize(pods), summarize(beyond)
	res.Lateness, res.LatenessSlow = summarize(late), summarize(lateSlow)
}

// addRequests counts the controller's requests during the phase, and per
// release those attributed to the released Canaries; events is the
// number of events about them.
func (res *rolloutResult) addRequests(reqs []request, names []string, events int) {
	res.Requests = countRequests(reqs)
	res.Attributed = countRequests(attributed(reqs, names))
	m := float64(len(names))
	eventWrites := res.Attributed.count("create", "events") + res.Attributed.count("patch", "events") + res.Attributed.count("update", "events")
	res.GetsPerRollout = float64(res.Attributed.Gets) / m
	res.WritesPerRollout = float64(res.Attributed.Writes-eventWrites) / m
	if res.StatusChanges > 0 {
		res.WritesPerChange = float64(res.Attributed.Writes-eventWrites) / float64(res.StatusChanges)
	}
	res.EventsPerRollout = float64(events) / m
}

// checkReleases records a problem for every release that did not end as
// it should: a failing one Failed with the primary on the old image, any
// other Succeeded with the primary on the new one.
func (r *run) checkReleases(ctx context.Context, phase string, names, failing []string, traces []rolloutTrace) {
	fails := map[string]bool{}
	for _, f := range failing {
		fails[f] = true
	}
	for i, n := range names {
		wantPhase, wantImage := string(flaggerv1beta1.CanaryPhaseSucceeded), imageV2
		if fails[n] {
			wantPhase, wantImage = string(flaggerv1beta1.CanaryPhaseFailed), imageV1
		}
		if !traces[i].done() && r.cfg.PhaseTimeout > 0 {
			continue // cut short by -phase-timeout: counted as unfinished
		}
		if got := traces[i].EndPhase; got != wantPhase {
			r.problem("%s: %s ended %q, want %s", phase, n, got, wantPhase)
		}
		primary := &appsv1.Deployment{}
		if err := r.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: n + "-primary"}, primary); err != nil {
			r.problem("%s: reading %s-primary: %v", phase, n, err)
			continue
		}
		if got := primary.Spec.Template.Spec.Containers[0].Image; got != wantImage {
			r.problem("%s: %s-primary runs %s, want %s", phase, n, got, wantImage)
		}
	}
}

// attributed keeps the requests that name an object of one of the
// Canaries (the Canary, its target, <target>-primary, <target>-canary and
// the events about them, <object>.<suffix>) or that read what only an
// analysis needs (MetricTemplates, AlertProviders).
func attributed(reqs []request, names []string) []request {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	var out []request
	for _, q := range reqs {
		if set[targetPrefix.FindString(q.Name)] || q.Resource == "metrictemplates" || q.Resource == "alertproviders" {
			out = append(out, q)
		}
	}
	return out
}

// targetPrefix finds the target's name (see targetName) at the start of
// the name of an object derived from it.
var targetPrefix = regexp.MustCompile(`^t-[0-9]+`)

// canaryEvents sums, per Canary, the counts of the Events about it.
func (r *run) canaryEvents(ctx context.Context) (map[string]int, error) {
	var list corev1.EventList
	if err := r.c.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{"involvedObject.kind": "Canary"}); err != nil {
		return nil, fmt.Errorf("listing the Canaries' events: %w", err)
	}
	out := map[string]int{}
	for _, e := range list.Items {
		c := int(max(e.Count, 1))
		if e.Series != nil && int(e.Series.Count) > c {
			c = int(e.Series.Count)
		}
		out[e.InvolvedObject.Name] += c
	}
	return out, nil
}
