package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// bedResult is what the control plane alone does: how fast Deployments
// become ready and roll, which bounds every other figure.
type bedResult struct {
	Deployments  int     `json:"deployments"`
	ReadySeconds float64 `json:"readySeconds"`
	Rolled       int     `json:"rolled"`
	// RollSeconds is the time until all Rolled Deployments had rolled to
	// a new template; PerRoll is each one's time from its change.
	RollSeconds float64 `json:"rollSeconds"`
	PerRoll     summary `json:"perRoll"`
	// Services ClusterIP Services were created at once in ServiceSeconds:
	// the API server allocates each an address, which makes creating
	// Services slower than any other object (see servicesFloor).
	Services       int     `json:"services"`
	ServiceSeconds float64 `json:"serviceSeconds"`
}

// servicesFloor is how long the control plane takes, at the rate the bed
// measured, to create n Services: a controller that makes three per
// Canary (as Flagger and Sluice do) cannot initialise N Canaries faster
// than servicesFloor(3N). Zero when the bed made none.
func (b bedResult) servicesFloor(n int) float64 {
	if b.Services == 0 {
		return 0
	}
	return b.ServiceSeconds * float64(n) / float64(b.Services)
}

// bed measures N plain Deployments becoming ready and M rolling, then
// deletes them (see waitBedGone); the empty namespace stays.
func (r *run) bed(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := r.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: bedNamespace}}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", bedNamespace, err)
	}
	w, err := startWatcher(wctx, r.rest, r.scheme, bedNamespace, &appsv1.Deployment{})
	if err != nil {
		return err
	}
	n, m := r.cfg.N, r.cfg.rollouts()
	name := func(i int) string { return fmt.Sprintf("bed-%05d", i) }
	begin := time.Now()
	if err := createAll(ctx, r.c, n, func(i int) []client.Object {
		return []client.Object{deployment(bedNamespace, name(i), 1, imageV1)}
	}); err != nil {
		return err
	}
	if err := waitFor(ctx, r.cfg.bedTimeout(), fmt.Sprintf("%d Deployments ready", n),
		func() bool { return countRolled(w, n, name, func(int) int64 { return 1 }) == n },
		func() string { return fmt.Sprintf("%d ready", countRolled(w, n, name, func(int) int64 { return 1 })) },
	); err != nil {
		return err
	}
	r.res.Bed = bedResult{Deployments: n, ReadySeconds: seconds(time.Since(begin)), Rolled: m}
	r.logf("bed: %d Deployments ready in %.1fs", n, r.res.Bed.ReadySeconds)

	gens := make([]int64, m)
	starts := make([]time.Time, m)
	begin = time.Now()
	if err := parallel(ctx, m, func(ctx context.Context, i int) error {
		starts[i] = time.Now()
		gen, err := setImage(ctx, r.c, bedNamespace, name(i), imageV2)
		gens[i] = gen
		return err
	}); err != nil {
		return err
	}
	rolled := func() int { return countRolled(w, m, name, func(i int) int64 { return gens[i] }) }
	if err := waitFor(ctx, r.cfg.bedTimeout(), fmt.Sprintf("%d Deployments rolled", m),
		func() bool { return rolled() == m }, func() string { return fmt.Sprintf("%d rolled", rolled()) }); err != nil {
		return err
	}
	r.res.Bed.RollSeconds = seconds(time.Since(begin))
	per := make([]time.Duration, m)
	for i := range m {
		at, _ := w.rolledAt(name(i), gens[i])
		per[i] = at.Sub(starts[i])
	}
	r.res.Bed.PerRoll = summarize(per)
	r.logf("bed: %d Deployments rolled in %.1fs (each p50 %.1fs)", m, r.res.Bed.RollSeconds, r.res.Bed.PerRoll.P50)

	// Deleting the Deployments is quicker than deleting the namespace,
	// which waits for the namespace controller's passes.
	if err := r.c.DeleteAllOf(ctx, &appsv1.Deployment{}, client.InNamespace(bedNamespace),
		client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		return fmt.Errorf("deleting the bed's Deployments: %w", err)
	}
	return r.bedServices(ctx, 3*m)
}

// bedServices measures the creation of k ClusterIP Services at once (as
// many as M Canaries have), then deletes them.
func (r *run) bedServices(ctx context.Context, k int) error {
	name := func(i int) string { return fmt.Sprintf("bed-svc-%05d", i) }
	begin := time.Now()
	if err := createAll(ctx, r.c, k, func(i int) []client.Object {
		return []client.Object{service(bedNamespace, name(i))}
	}); err != nil {
		return err
	}
	r.res.Bed.Services, r.res.Bed.ServiceSeconds = k, seconds(time.Since(begin))
	r.logf("bed: %d Services created in %.1fs (%.0f per second)", k, r.res.Bed.ServiceSeconds, float64(k)/r.res.Bed.ServiceSeconds)
	return parallel(ctx, k, func(ctx context.Context, i int) error {
		if err := r.c.Delete(ctx, service(bedNamespace, name(i))); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting the bed's Service %s: %w", name(i), err)
		}
		return nil
	})
}

// waitBedGone waits until the bed's Pods are gone, so that they cost
// nothing in the phases that follow.
func (r *run) waitBedGone(ctx context.Context) error {
	begin := time.Now()
	left := func() int {
		var pods corev1.PodList
		if err := r.c.List(ctx, &pods, client.InNamespace(bedNamespace)); err != nil {
			return -1
		}
		return len(pods.Items)
	}
	err := waitFor(ctx, r.cfg.bedTimeout(), "the bed's Pods gone", func() bool { return left() == 0 },
		func() string { return fmt.Sprintf("%d Pods left", left()) })
	if err != nil {
		return err
	}
	r.logf("bed: Pods gone after %s more", since(begin))
	return nil
}

// countRolled counts the first n Deployments that have rolled out at the
// generation gen gives them.
func countRolled(w *watcher, n int, name func(int) string, gen func(int) int64) int {
	c := 0
	for i := range n {
		if _, ok := w.rolledAt(name(i), gen(i)); ok {
			c++
		}
	}
	return c
}

// setImage changes the container image of Deployment ns/name and returns
// its new generation.
func setImage(ctx context.Context, c client.Client, ns, name, image string) (int64, error) {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		return 0, fmt.Errorf("reading Deployment %s: %w", name, err)
	}
	before := d.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := c.Patch(ctx, d, client.MergeFrom(before)); err != nil {
		return 0, fmt.Errorf("changing the image of %s: %w", name, err)
	}
	return d.Generation, nil
}

// initResult is phase 1: N Canaries created and initialised.
type initResult struct {
	Canaries int `json:"canaries"`
	// StartSeconds is the time the controller took to answer its health
	// check.
	StartSeconds float64 `json:"startSeconds"`
	// CreateSeconds is the time the benchmark took to create the targets
	// and Canaries; Seconds counts from the first creation until all were
	// seen Initialized.
	CreateSeconds float64 `json:"createSeconds"`
	Seconds       float64 `json:"seconds"`
	// VsBed is Seconds over the bed's time for N Deployments.
	VsBed float64 `json:"vsBed"`
	// ServicesFloorSeconds is the bed's time to create the 3N Services
	// the Canaries need (see bedResult.servicesFloor), and VsFloor
	// Seconds over the larger of that and the bed's time for N
	// Deployments.
	ServicesFloorSeconds float64 `json:"servicesFloorSeconds"`
	VsFloor              float64 `json:"vsFloor"`
	// Initialized is how many Canaries were Initialized; fewer than
	// Canaries when -phase-timeout ended the phase (then Seconds is that
	// time).
	Initialized int     `json:"initialized"`
	RSSMiB      float64 `json:"rssMiB"`
	// AnonRSSMiB is the anonymous part of RSSMiB (see usage).
	AnonRSSMiB float64       `json:"anonRSSMiB"`
	Requests   requestCounts `json:"requests"`
}

// initialize creates N targets with their Canaries and waits until every
// Canary is Initialized.
func (r *run) initialize(ctx context.Context) error {
	n := r.cfg.N
	begin := time.Now()
	err := createAll(ctx, r.c, n, func(i int) []client.Object {
		name := targetName(i)
		spec := canarySpec{interval: r.cfg.Interval.String(), iterations: int32(r.cfg.Iterations), threshold: int32(r.cfg.Threshold)}
		if r.cfg.SlowHooks && i%10 == 9 {
			spec.slowHook = r.stub.URL + slowHookPath
		}
		return []client.Object{deployment(namespace, name, 1, imageV1), canary(namespace, name, spec)}
	})
	if err != nil {
		return err
	}
	if r.cfg.SlowHooks {
		for i := 9; i < n; i += 10 {
			r.slow[targetName(i)] = true
		}
	}
	r.res.Init.Canaries = n
	r.res.Init.CreateSeconds = seconds(time.Since(begin))
	initialized := func() int {
		c := 0
		for i := range n {
			if r.w.phase(targetName(i)) == string(flaggerv1beta1.CanaryPhaseInitialized) {
				c++
			}
		}
		return c
	}
	err = waitFor(ctx, r.cfg.initTimeout(), fmt.Sprintf("%d Canaries Initialized", n),
		func() bool { return initialized() == n },
		func() string { return fmt.Sprintf("%d Initialized; phases: %s", initialized(), r.phases(n)) },
	)
	// With -phase-timeout an unfinished phase is a figure, not a failure:
	// the next phases run on what there is.
	if err != nil && (r.cfg.PhaseTimeout <= 0 || ctx.Err() != nil) {
		return err
	}
	end := time.Now()
	r.res.Init.Initialized = initialized()
	r.res.Init.Seconds = seconds(end.Sub(begin))
	if r.res.Bed.ReadySeconds > 0 {
		r.res.Init.VsBed = r.res.Init.Seconds / r.res.Bed.ReadySeconds
		r.res.Init.ServicesFloorSeconds = r.res.Bed.servicesFloor(3 * n)
		r.res.Init.VsFloor = r.res.Init.Seconds / max(r.res.Bed.ReadySeconds, r.res.Init.ServicesFloorSeconds)
	}
	if err != nil {
		r.logf("phase 1: unfinished: %d of %d Initialized after %.1fs (-phase-timeout)", r.res.Init.Initialized, n, r.res.Init.Seconds)
	} else {
		r.logf("phase 1: %d Canaries Initialized in %.1fs (%.2fx the bed; %.2fx the floor, %d Services alone taking %.1fs)",
			n, r.res.Init.Seconds, r.res.Init.VsBed, r.res.Init.VsFloor, 3*n, r.res.Init.ServicesFloorSeconds)
	}
	u, err := r.proc.usage()
	if err != nil {
		return err
	}
	r.res.Init.RSSMiB, r.res.Init.AnonRSSMiB = mib(u.RSS), mib(u.AnonRSS)
	reqs, err := r.audit.between(begin, end)
	if err != nil {
		return err
	}
	r.res.Init.Requests = countRequests(reqs)
	return nil
}

// phases counts the Canaries' last seen phases, for an error message.
func (r *run) phases(n int) string {
	count := map[string]int{}
	for i := range n {
		count[r.w.phase(targetName(i))]++
	}
	var parts []string
	for p, c := range count {
		if p == "" {
			p = "(no status)"
		}
		parts = append(parts, fmt.Sprintf("%s %d", p, c))
	}
	return strings.Join(parts, ", ")
}

// idleResult is phase 2: nothing changes.
type idleResult struct {
	Seconds           float64 `json:"seconds"`
	RequestsPerMinute float64 `json:"requestsPerMinute"`
	WritesPerMinute   float64 `json:"writesPerMinute"`
	// ByVerb and ByResource are requests per minute.
	ByVerb              map[string]float64 `json:"byVerb"`
	ByResource          map[string]float64 `json:"byResource"`
	CPUSecondsPerMinute float64            `json:"cpuSecondsPerMinute"`
	RSSMiB              float64            `json:"rssMiB"`
	// AnonRSSMiB is the anonymous part of RSSMiB (see usage).
	AnonRSSMiB float64       `json:"anonRSSMiB"`
	Requests   requestCounts `json:"requests"`
}

// idle waits for the controller to settle, then measures what it does
// while nothing changes.
func (r *run) idle(ctx context.Context) error {
	res, err := r.measureIdle(ctx, "phase 2")
	r.res.Idle = res
	return err
}

// noiseResult is phase 5: -noise more unrelated Deployments, ConfigMaps
// and Secrets are created, then the controller is measured idle again.
type noiseResult struct {
	Objects int `json:"objects"`
	// CreateSeconds is the time to create them and for
	// kube-controller-manager to observe the Deployments.
	CreateSeconds float64    `json:"createSeconds"`
	Idle          idleResult `json:"idle"`
}

// noise creates -noise more unrelated objects of each kind and measures
// the idle controller again: its memory must follow the Canaries, not the
// size of the cluster.
func (r *run) noise(ctx context.Context) error {
	begin := time.Now()
	from := r.cfg.N
	if err := r.createUnrelated(ctx, from, from+r.cfg.Noise); err != nil {
		return err
	}
	r.res.Noise = noiseResult{Objects: r.cfg.Noise, CreateSeconds: seconds(time.Since(begin))}
	res, err := r.measureIdle(ctx, "phase 5")
	r.res.Noise.Idle = res
	return err
}

// measureIdle waits -settle, then measures the controller for -idle.
func (r *run) measureIdle(ctx context.Context, phase string) (idleResult, error) {
	if err := sleep(ctx, r.cfg.Settle); err != nil {
		return idleResult{}, err
	}
	u0, err := r.proc.usage()
	if err != nil {
		return idleResult{}, err
	}
	r.logf("%s: idle for %s", phase, r.cfg.Idle)
	if err := sleep(ctx, r.cfg.Idle); err != nil {
		return idleResult{}, err
	}
	u1, err := r.proc.usage()
	if err != nil {
		return idleResult{}, err
	}
	reqs, err := r.audit.between(u0.At, u1.At)
	if err != nil {
		return idleResult{}, err
	}
	minutes := u1.At.Sub(u0.At).Minutes()
	counts := countRequests(reqs)
	res := idleResult{
		Seconds:             seconds(u1.At.Sub(u0.At)),
		RequestsPerMinute:   float64(counts.Total) / minutes,
		WritesPerMinute:     float64(counts.Writes) / minutes,
		ByVerb:              perMinute(counts.ByVerb, minutes),
		ByResource:          perMinute(counts.ByResource, minutes),
		CPUSecondsPerMinute: (u1.CPU - u0.CPU).Seconds() / minutes,
		RSSMiB:              mib(u1.RSS),
		AnonRSSMiB:          mib(u1.AnonRSS),
		Requests:            counts,
	}
	r.logf("%s: %.0f requests/min (%.0f writes), %.2f CPU s/min, RSS %.1f MiB (anonymous %.1f MiB)",
		phase, res.RequestsPerMinute, res.WritesPerMinute, res.CPUSecondsPerMinute, res.RSSMiB, res.AnonRSSMiB)
	return res, nil
}

func perMinute(counts map[string]int, minutes float64) map[string]float64 {
	out := make(map[string]float64, len(counts))
	for k, v := range counts {
		out[k] = float64(v) / minutes
	}
	return out
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
