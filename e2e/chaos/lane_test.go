//go:build e2e

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/e2e/meshsim"
)

const (
	// app is the workload, apex Service and Canary name in every lane.
	app   = "podinfo"
	image = "ghcr.io/stefanprodan/podinfo:"
	// faultyErrorRate is the share of requests a faulty revision fails.
	faultyErrorRate = "0.6"
	// analysisInterval is every Canary's analysis interval (the
	// manager's minimum), and threshold its failed checks threshold.
	analysisInterval = 10 * time.Second
	threshold        = 4
	// progressDeadline is every Canary's progressDeadlineSeconds.
	progressDeadline = 120
	// requestsPerSecond is the traffic each lane's users send.
	requestsPerSecond = 8
)

// The strategies a lane releases with.
const (
	strategyCanary    = "canary"
	strategyAB        = "a/b"
	strategyBlueGreen = "blue/green"
)

// lane is one Canary, in its own namespace, through which a sequence of
// rollouts is released one after the other.
type lane struct {
	idx      int
	ns       string
	strategy string
	// webhook says whether the Canary calls the flaky webhook server at
	// every step.
	webhook  bool
	sim      *meshsim.Sim
	rollouts []*rollout
}

// rollout is one revision released through a lane.
type rollout struct {
	lane   *lane
	n      int
	image  string
	faulty bool

	released, ended time.Time
	// applied is the revision hash (status.lastAppliedSpec) of its
	// analysis; phase is the terminal phase it reached, "" if none.
	applied, phase string
	// stuck says why it did not end in time.
	stuck string
}

// id names the rollout in reports.
func (r *rollout) id() string { return fmt.Sprintf("%s#%d", r.lane.ns, r.n) }

// tag is the image tag of the lane's n-th revision; 0 is the initial one.
func tag(lane, n int) string { return fmt.Sprintf("%d.%d.0", lane, n) }

// target is the lane's Deployment at its initial revision.
func (l *lane) target() *appsv1.Deployment {
	labels := map[string]string{"app": app}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: l.ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					meshsim.AnnotationErrorRate: "0", meshsim.AnnotationLatency: "5",
				}},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers: []corev1.Container{{
						Name: app, Image: image + tag(l.idx, 0),
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
					}},
				},
			},
		},
	}
}

// canary is the lane's Canary for its strategy.
func (l *lane) canary(webhookURL string) *flaggerv1beta1.Canary {
	a := &flaggerv1beta1.CanaryAnalysis{
		Interval:  analysisInterval.String(),
		Threshold: threshold,
		Metrics: []flaggerv1beta1.CanaryMetric{{
			Name: "request-success-rate", Interval: "20s",
			ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)},
		}},
	}
	switch l.strategy {
	case strategyAB:
		a.Iterations = ptr.To[int32](3)
		a.Match = []flaggerv1beta1.HTTPMatchConditions{{Headers: map[string]flaggerv1beta1.HeaderMatch{"x-canary": {Exact: ptr.To("insider")}}}}
	case strategyBlueGreen:
		a.Iterations = ptr.To[int32](3)
		a.Mirror = true
	default:
		a.StepWeight, a.MaxWeight = ptr.To[int32](25), ptr.To[int32](50)
	}
	if l.webhook {
		a.Webhooks = []flaggerv1beta1.CanaryWebhook{{
			Name: "flaky", Type: flaggerv1beta1.RolloutHook, URL: webhookURL + "/" + l.ns, Timeout: "3s",
		}}
	}
	return &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: l.ns},
		Spec: flaggerv1beta1.CanarySpec{
			Provider:                flaggerv1beta1.ProviderIstio,
			TargetRef:               flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
			Service:                 flaggerv1beta1.CanaryService{Port: 9898},
			ProgressDeadlineSeconds: ptr.To[int32](progressDeadline),
			Analysis:                a,
		},
	}
}

// traffic sends the lane's users' requests through the simulated mesh
// until ctx ends: requestsPerSecond, half of them carrying the A/B header.
func (l *lane) traffic(ctx context.Context, wg *sync.WaitGroup) {
	hc := &http.Client{Timeout: 5 * time.Second}
	sem := make(chan struct{}, 16)
	tick := time.NewTicker(time.Second / requestsPerSecond)
	wg.Go(func() {
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				continue // the mesh is slow: drop this request
			}
			header := i%2 == 0
			wg.Go(func() {
				defer func() { <-sem }()
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.sim.ProxyURL+"/", nil)
				if err != nil {
					return
				}
				if header {
					req.Header.Set("x-canary", "insider")
				}
				if resp, err := hc.Do(req); err == nil {
					_ = resp.Body.Close()
				}
			})
		}
	})
}

// release patches the target to the rollout's revision, retrying while
// the API server is away.
func (l *lane) release(ctx context.Context, c client.Client, r *rollout) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := l.patchTarget(ctx, c, r)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Second)
	}
}

func (l *lane) patchTarget(ctx context.Context, c client.Client, r *rollout) error {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: l.ns, Name: app}, d); err != nil {
		return fmt.Errorf("reading the target of %s: %w", l.ns, err)
	}
	before := d.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = r.image
	rate := "0"
	if r.faulty {
		rate = faultyErrorRate
	}
	d.Spec.Template.Annotations[meshsim.AnnotationErrorRate] = rate
	if err := c.Patch(ctx, d, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("releasing %s in %s: %w", r.image, l.ns, err)
	}
	return nil
}

// run releases the lane's rollouts one after the other, each once the
// previous one ended, and records when each began and ended. A rollout
// that does not end within maxRollout is stuck, and the lane stops.
func (l *lane) run(ctx context.Context, c client.Client, rec *recorder, rng *rand.Rand, maxRollout time.Duration, done func(*rollout)) {
	for _, r := range l.rollouts {
		prev := rec.latest(l.ns)
		if err := l.release(ctx, c, r); err != nil {
			r.stuck = err.Error()
			done(r)
			return
		}
		r.released = time.Now()
		deadline := r.released.Add(maxRollout)
		for r.phase == "" {
			o := rec.latest(l.ns)
			if r.applied == "" && o.applied != prev.applied && o.applied != "" {
				r.applied = o.applied
			}
			if r.applied != "" && o.applied == r.applied && terminal(o.phase) {
				r.phase, r.ended = o.phase, o.at
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				r.stuck = fmt.Sprintf("not ended %s after its release: phase %s, revision %q, weight %d, iterations %d",
					maxRollout, o.phase, o.applied, o.weight, o.iterations)
				done(r)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
		done(r)
		// Users take a moment before the next release.
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
	}
}

// terminal reports whether a phase ends a rollout.
func terminal(phase string) bool {
	return phase == string(flaggerv1beta1.CanaryPhaseSucceeded) || phase == string(flaggerv1beta1.CanaryPhaseFailed)
}

// errorRateOf reads a template's simulated error rate.
func errorRateOf(t *corev1.PodTemplateSpec) float64 {
	v, _ := strconv.ParseFloat(t.Annotations[meshsim.AnnotationErrorRate], 64)
	return v
}
