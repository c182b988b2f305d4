package cli

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
	"github.com/sluicedev/sluice/pkg/metrics"
	"github.com/sluicedev/sluice/pkg/router"
)

// The statuses and events of the tests are not written by hand: a player
// drives the controller's own decision function, statemachine.Decide,
// through a release with scripted observations and check results, the way
// the reconciler does (Plan says what is due, the results of what is due
// go into Decide), and the fixture writes the status it ends with and the
// events it emitted, as the controller's recorder would. So the messages,
// conditions and analysis history are exactly the controller's.

// player plays reconciles of one Canary through statemachine.Decide.
type player struct {
	name, ns string
	spec     flaggerv1beta1.CanarySpec
	status   flaggerv1beta1.CanaryStatus
	now      time.Time
	obs      statemachine.Observation
	routes   statemachine.Routes
	events   []playedEvent
	// labels and annotations are set on the Canary when it is written.
	labels, annotations map[string]string
}

// playedEvent is an event the state machine emitted, with its time.
type playedEvent struct {
	at time.Time
	statemachine.Event
}

// script is what the world answers in one reconcile: metric values by
// name (a missing one has no data) and the gates' answers (unset gates
// are open; rollback gates are closed).
type script struct {
	metrics map[string]float64
	gates   map[flaggerv1beta1.HookType]statemachine.Gate
}

// newPlayer starts a Canary named podinfo with an initialized-ready world:
// a target and primary of two ready replicas at revision rev-1.
func newPlayer(ns string, spec flaggerv1beta1.CanarySpec, start time.Time) *player {
	return &player{name: "podinfo", ns: ns, spec: spec, now: start, obs: statemachine.Observation{
		Revision: "5f7b8c9d4e3a2b1c",
		Target:   statemachine.Workload{Exists: true, Replicas: 2, Ready: true},
		Primary:  statemachine.Workload{Exists: true, Replicas: 2, Ready: true},
		Admitted: true,
	}}
}

// tick moves the clock by d and runs one reconcile.
func (p *player) tick(d time.Duration, s script) {
	p.now = p.now.Add(d)
	in := statemachine.Input{
		Spec: p.spec, Status: p.status, Name: p.name, Namespace: p.ns, Generation: 1, Obs: p.obs, Now: p.now,
		Config: statemachine.Config{MinInterval: 10 * time.Second, SplitsTraffic: p.spec.Provider != flaggerv1beta1.ProviderKubernetes},
	}
	in.Results = p.results(statemachine.Plan(in), s)
	dec := statemachine.Decide(in)
	p.status = dec.Status
	for _, a := range dec.Actions {
		switch a.Kind {
		case statemachine.SetRoutes:
			p.routes = a.Routes
			routes := a.Routes
			p.obs.Routes = &routes
		case statemachine.Promote:
			if a.Revision == p.obs.Revision {
				p.obs.Primary.Revision = a.Revision
			}
		case statemachine.ScaleTargetToZero:
			p.obs.Target = statemachine.Workload{Exists: true, Ready: true}
		}
	}
	for _, e := range dec.Events {
		p.events = append(p.events, playedEvent{at: p.now, Event: e})
	}
}

// results answers what Plan says is due, as the reconciler's runDue does.
func (p *player) results(due statemachine.Due, s script) statemachine.Results {
	var res statemachine.Results
	gate := func(ok bool, t flaggerv1beta1.HookType) {
		if !ok {
			return
		}
		if res.Gates == nil {
			res.Gates = map[flaggerv1beta1.HookType]statemachine.Gate{}
		}
		g, set := s.gates[t]
		if !set {
			g = statemachine.Gate{Open: t != flaggerv1beta1.RollbackHook}
		}
		res.Gates[t] = g
	}
	gate(due.ConfirmRollout, flaggerv1beta1.ConfirmRolloutHook)
	gate(due.Rollback, flaggerv1beta1.RollbackHook)
	gate(due.ConfirmTrafficIncrease, flaggerv1beta1.ConfirmTrafficIncreaseHook)
	gate(due.ConfirmPromotion, flaggerv1beta1.ConfirmPromotionHook)
	switch {
	case due.PreRollout:
		res.Checks = p.hookChecks(flaggerv1beta1.PreRolloutHook)
	case due.Analysis:
		res.Checks = append(p.hookChecks(flaggerv1beta1.RolloutHook), p.metricChecks(s)...)
	}
	return res
}

// hookChecks are passing webhook checks, as the reconciler records them.
func (p *player) hookChecks(t flaggerv1beta1.HookType) []flaggerv1beta1.CanaryCheckResult {
	var out []flaggerv1beta1.CanaryCheckResult
	for _, h := range p.spec.Analysis.Webhooks {
		if h.EffectiveType() == t {
			out = append(out, flaggerv1beta1.CanaryCheckResult{Time: metav1.NewTime(p.now), Kind: flaggerv1beta1.CheckWebhook, Name: h.Name, Passed: true})
		}
	}
	return out
}

// metricChecks are the metric results as metrics.Analyzer builds them.
func (p *player) metricChecks(s script) []flaggerv1beta1.CanaryCheckResult {
	var out []flaggerv1beta1.CanaryCheckResult
	for _, m := range p.spec.Analysis.Metrics {
		r := flaggerv1beta1.CanaryCheckResult{Time: metav1.NewTime(p.now), Kind: flaggerv1beta1.CheckMetric, Name: m.Name, DryRun: m.DryRun}
		if m.ThresholdRange != nil {
			r.Min, r.Max = m.ThresholdRange.Min, m.ThresholdRange.Max
		}
		r.Query = fmt.Sprintf("%s{namespace=%q,workload=%q}", m.Name, p.ns, p.spec.TargetRef.Name)
		if v, ok := s.metrics[m.Name]; ok {
			r.Value = ptr.To(v)
			r.Passed, r.Message = metrics.Within(v, m.ThresholdRange)
		} else {
			r.NoData, r.Message = true, metrics.ErrNoValues.Error()
		}
		out = append(out, r)
	}
	return out
}

// release changes the target's revision, to 7d4f9b6c5a8e0f12, twenty
// minutes later; the new canary pods are ready.
func (p *player) release() {
	p.now = p.now.Add(20 * time.Minute)
	p.obs.Revision = "7d4f9b6c5a8e0f12"
	p.obs.Target = statemachine.Workload{Exists: true, Replicas: 2, Ready: true}
}

// istioSpec is the Canary of the e2e Istio scenarios and the demo: 20%
// steps to 60%, success rate at least 99% and P99 at most 500ms, a
// pre-rollout load test, an analysis every 10s and threshold 2.
func istioSpec(hooks ...flaggerv1beta1.CanaryWebhook) flaggerv1beta1.CanarySpec {
	return flaggerv1beta1.CanarySpec{
		Provider:                flaggerv1beta1.ProviderIstio,
		TargetRef:               flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
		Service:                 flaggerv1beta1.CanaryService{Port: 9898},
		ProgressDeadlineSeconds: ptr.To[int32](600),
		Analysis: &flaggerv1beta1.CanaryAnalysis{
			Interval: "10s", Threshold: 2, StepWeight: ptr.To[int32](20), MaxWeight: ptr.To[int32](60),
			Metrics: []flaggerv1beta1.CanaryMetric{
				{Name: "request-success-rate", Interval: "20s", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
				{Name: "request-duration", Interval: "20s", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
			},
			Webhooks: append([]flaggerv1beta1.CanaryWebhook{{
				Name: "load-test", Type: flaggerv1beta1.PreRolloutHook, URL: "http://flagger-loadtester.test/",
				Metadata: map[string]string{"cmd": "hey -z 30m -q 20 -c 2 http://podinfo-canary.test:9898/"},
			}}, hooks...),
		},
	}
}

// healthy and faulty are the values of one step's metrics.
var healthy = script{metrics: map[string]float64{"request-success-rate": 100, "request-duration": 25}}

func faulty(rate float64) script {
	return script{metrics: map[string]float64{"request-success-rate": rate, "request-duration": 25}}
}

// fixture writes a played Canary and its world into the API server.
type fixture struct {
	t  *testing.T
	ns string
	cd *flaggerv1beta1.Canary
}

// write creates the target and primary Deployments with the played
// readiness, the Services and routing objects with the played split, the
// Canary with the played status, and its events.
func write(t *testing.T, p *player) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{t: t, ns: p.ns}
	labels := map[string]string{"app": "podinfo"}
	for _, w := range []struct {
		name string
		obs  statemachine.Workload
	}{{"podinfo", p.obs.Target}, {"podinfo-primary", p.obs.Primary}} {
		if !w.obs.Exists {
			continue
		}
		sel := map[string]string{"app": w.name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: p.ns, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(w.obs.Replicas),
				Selector: &metav1.LabelSelector{MatchLabels: sel},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: sel},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "podinfo", Image: "ghcr.io/stefanprodan/podinfo:6.0.0",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}}}}},
				},
			},
		}
		f.create(d)
		ready := w.obs.Replicas
		if !w.obs.Ready {
			ready = max(w.obs.Replicas-1, 0)
		}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: w.obs.Replicas, UpdatedReplicas: w.obs.Replicas,
			ReadyReplicas: ready, AvailableReplicas: ready}
		if err := env.Client.Status().Update(ctx, d); err != nil {
			t.Fatalf("writing the status of %s: %v", w.name, err)
		}
	}
	f.cd = writeCanary(t, p)
	if p.status.Phase != "" && p.status.Phase != flaggerv1beta1.CanaryPhaseInitializing {
		f.routing(p)
	}
	f.events(p.events)
	return f
}

// writeCanary creates the played Canary with its status.
func writeCanary(t *testing.T, p *player) *flaggerv1beta1.Canary {
	t.Helper()
	cd := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.ns, Labels: p.labels, Annotations: p.annotations},
		Spec:       p.spec,
	}
	if err := env.Client.Create(t.Context(), cd); err != nil {
		t.Fatalf("creating Canary %s: %v", p.name, err)
	}
	cd.Status = p.status
	if err := env.Client.Status().Update(t.Context(), cd); err != nil {
		t.Fatalf("writing the status of Canary %s: %v", p.name, err)
	}
	return cd
}

func (f *fixture) create(o client.Object) {
	f.t.Helper()
	if err := env.Client.Create(f.t.Context(), o); err != nil {
		f.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
	}
}

// routing creates the Services and the provider's routing objects with
// Sluice's routers, and sets the played split.
func (f *fixture) routing(p *player) {
	f.t.Helper()
	ctx := f.t.Context()
	target := router.Target{SelectorLabel: "app", SelectorValue: "podinfo",
		Containers: []router.Container{{Name: "podinfo", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}}}}}
	if err := router.EnsureServices(ctx, env.Client, f.cd, target); err != nil {
		f.t.Fatalf("creating the Services: %v", err)
	}
	rt, err := router.New(p.spec.Provider, router.Deps{Client: env.Client})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := rt.Reconcile(ctx, f.cd, target); err != nil {
		f.t.Fatalf("creating the routing objects: %v", err)
	}
	r := router.Routes{Primary: p.routes.Primary, Canary: p.routes.Canary, Mirrored: p.routes.Mirrored}
	if r.Primary+r.Canary != 100 {
		r = router.Routes{Primary: 100}
	}
	if err := rt.SetRoutes(ctx, f.cd, target, r); err != nil {
		f.t.Fatalf("setting the routes: %v", err)
	}
}

// events writes the played events as the controller's recorder does
// (core/v1, reason Synced, component sluice), counting repeats of the
// same message in one event.
func (f *fixture) events(played []playedEvent) {
	f.t.Helper()
	byMessage := map[string]*corev1.Event{}
	var order []*corev1.Event
	for _, pe := range played {
		key := string(pe.Type) + "/" + pe.Message
		if ev, ok := byMessage[key]; ok {
			ev.Count++
			ev.LastTimestamp = metav1.NewTime(pe.at)
			continue
		}
		ev := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%04x", f.cd.Name, len(order)+1), Namespace: f.ns},
			InvolvedObject: corev1.ObjectReference{Kind: "Canary", APIVersion: flaggerv1beta1.GroupVersion.String(), Namespace: f.ns,
				Name: f.cd.Name, UID: f.cd.UID, ResourceVersion: f.cd.ResourceVersion},
			Reason: "Synced", Message: pe.Message, Type: string(pe.Type), Count: 1,
			FirstTimestamp: metav1.NewTime(pe.at), LastTimestamp: metav1.NewTime(pe.at),
			Source: corev1.EventSource{Component: "sluice"},
		}
		byMessage[key] = ev
		order = append(order, ev)
	}
	for _, ev := range order {
		f.create(ev)
	}
}
