package cli

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
	"github.com/sluicedev/sluice/pkg/problem"
)

// The releases below are played through the controller's decision
// function; each ends a few seconds before testNow. They follow the e2e
// scenarios (e2e/scenarios) and the demo: the Istio canary of 20% steps to
// 60% with threshold 2.

// scenarios are the played releases by name, each in its own namespace.
var scenarios = map[string]func(ns string) *player{
	// The demo's faulty release: two steps below 99% success roll it back.
	"failed-threshold": func(ns string) *player {
		p := initialized(ns, istioSpec())
		p.release()
		p.tick(5*time.Second, script{})
		p.tick(time.Second, script{})
		p.tick(10*time.Second, faulty(93.7))
		p.tick(10*time.Second, faulty(71.9))
		return p
	},
	// A faulty release one failed step into its analysis, at 40%.
	"progressing-failed-check": func(ns string) *player {
		p := initialized(ns, istioSpec())
		p.release()
		p.tick(5*time.Second, script{})
		p.tick(time.Second, script{})
		p.tick(10*time.Second, healthy)
		p.tick(10*time.Second, faulty(97.2))
		return p
	},
	// A new revision whose pods do not become ready.
	"progressing-canary-not-ready": func(ns string) *player {
		p := initialized(ns, istioSpec())
		p.release()
		p.obs.Target = statemachine.Workload{Exists: true, Replicas: 2, Message: "waiting for rollout: 1 of 2 updated replicas available"}
		p.tick(5*time.Second, script{})
		p.tick(3*time.Minute, script{})
		return p
	},
	// The canary never became ready: rolled back at the progress deadline.
	"failed-canary-deadline": func(ns string) *player {
		p := initialized(ns, istioSpec())
		p.release()
		p.obs.Target = statemachine.Workload{Exists: true, Replicas: 2, Message: "waiting for rollout: 0 of 2 updated replicas available"}
		p.tick(5*time.Second, script{})
		p.tick(5*time.Minute, script{})
		p.tick(5*time.Minute, script{})
		return p
	},
	// The e2e confirm-promotion scenario: a 50% step, then the closed gate.
	"waiting-promotion": func(ns string) *player {
		spec := istioSpec(flaggerv1beta1.CanaryWebhook{Name: "approve", Type: flaggerv1beta1.ConfirmPromotionHook,
			URL: "http://flagger-loadtester.test/gate/check"})
		spec.Analysis.StepWeight, spec.Analysis.MaxWeight = ptrInt32(50), ptrInt32(50)
		p := initialized(ns, spec)
		closed := script{metrics: healthy.metrics, gates: map[flaggerv1beta1.HookType]statemachine.Gate{
			flaggerv1beta1.ConfirmPromotionHook: {Message: fmt.Sprintf(
				"webhook approve: POST http://flagger-loadtester.test/gate/check: status 403: gate closed for podinfo.%s", ns)},
		}}
		p.release()
		p.tick(5*time.Second, script{})
		p.tick(time.Second, script{})
		p.tick(10*time.Second, closed)
		p.tick(10*time.Second, closed)
		p.tick(10*time.Second, closed)
		return p
	},
	// A confirm-traffic-increase gate holds the weight at 20%.
	"progressing-traffic-gate": func(ns string) *player {
		spec := istioSpec(flaggerv1beta1.CanaryWebhook{Name: "more-traffic", Type: flaggerv1beta1.ConfirmTrafficIncreaseHook,
			URL: "http://flagger-loadtester.test/gate/check"})
		p := initialized(ns, spec)
		closed := script{metrics: healthy.metrics, gates: map[flaggerv1beta1.HookType]statemachine.Gate{
			flaggerv1beta1.ConfirmTrafficIncreaseHook: {Message: fmt.Sprintf(
				"webhook more-traffic: POST http://flagger-loadtester.test/gate/check: status 403: gate closed for podinfo.%s", ns)},
		}}
		p.release()
		p.tick(5*time.Second, script{})
		p.tick(time.Second, script{})
		p.tick(10*time.Second, closed)
		p.tick(10*time.Second, closed)
		return p
	},
	// Two analyses run already and the controller's cap is 2.
	"waiting-slot": func(ns string) *player {
		p := initialized(ns, istioSpec())
		p.obs.Admitted, p.obs.AdmissionMessage = false, "2 of 2 analyses are running (-max-concurrent-canaries)"
		p.release()
		p.tick(5*time.Second, script{})
		p.tick(10*time.Second, script{})
		p.tick(10*time.Second, script{})
		return p
	},
	// A confirm-rollout gate on the load tester, closed.
	"waiting-confirm-rollout": func(ns string) *player {
		spec := istioSpec(flaggerv1beta1.CanaryWebhook{Name: "start", Type: flaggerv1beta1.ConfirmRolloutHook,
			URL: "http://flagger-loadtester.test/gate/check"})
		p := initialized(ns, spec)
		closed := script{gates: map[flaggerv1beta1.HookType]statemachine.Gate{flaggerv1beta1.ConfirmRolloutHook: {Message: fmt.Sprintf(
			"webhook start: POST http://flagger-loadtester.test/gate/check: status 403: gate closed for podinfo.%s", ns)}}}
		p.release()
		p.tick(5*time.Second, closed)
		p.tick(10*time.Second, closed)
		return p
	},
	// The target was deleted after initialization.
	"invalid-target": func(ns string) *player {
		p := initialized(ns, istioSpec())
		p.obs.Target = statemachine.Workload{}
		p.obs.Invalid = &problem.Problem{Reason: problem.TargetNotFound,
			Message: fmt.Sprintf("Deployment podinfo not found in namespace %s: create it or fix spec.targetRef", ns)}
		p.tick(20*time.Second, script{})
		return p
	},
	// The metrics server does not answer when a new revision comes.
	"invalid-metrics": func(ns string) *player {
		p := initialized(ns, istioSpec())
		p.obs.Invalid = &problem.Problem{Reason: problem.MetricUnavailable, RetryAfter: 10 * time.Second,
			Message: `metric request-success-rate: its provider does not answer: Get "http://prometheus.istio-system:9090/api/v1/status/buildinfo": dial tcp 10.96.0.10:9090: connect: connection refused`}
		p.release()
		p.tick(20*time.Second, script{})
		return p
	},
	// A healthy release, promoted.
	"succeeded": func(ns string) *player {
		p := initialized(ns, istioSpec())
		p.release()
		p.tick(5*time.Second, script{})
		p.tick(time.Second, script{})
		for range 3 {
			p.tick(10*time.Second, healthy)
		}
		p.tick(time.Second, script{})
		p.tick(5*time.Second, script{}) // the canary is scaled down after the drain
		return p
	},
	// The promotion is under way and the primary's new pods are not ready.
	"promoting": func(ns string) *player {
		p := initialized(ns, istioSpec())
		p.release()
		p.tick(5*time.Second, script{})
		p.tick(time.Second, script{})
		for range 3 {
			p.tick(10*time.Second, healthy)
		}
		p.obs.Primary = statemachine.Workload{Exists: true, Replicas: 2, Message: "waiting for rollout: 1 of 2 replicas updated"}
		p.tick(time.Second, script{})
		return p
	},
	// A new Canary whose primary is being created.
	"initializing": func(ns string) *player {
		p := newPlayer(ns, istioSpec(), testNow.Add(-90*time.Second))
		p.obs.Primary = statemachine.Workload{Exists: true, Replicas: 2, Message: "waiting for rollout: 0 of 2 updated replicas available"}
		p.tick(0, script{})
		p.tick(30*time.Second, script{})
		return p
	},
}

// initialized plays the initialization of a Canary; the times are rebased
// later, so that every scenario ends 4 seconds before testNow.
func initialized(ns string, spec flaggerv1beta1.CanarySpec) *player {
	p := newPlayer(ns, spec, testNow.Add(-time.Hour))
	p.tick(0, script{})
	return p
}

// rebase moves every time of a played Canary so that its last reconcile
// happened 4 seconds before testNow.
func rebase(p *player) {
	shift := testNow.Add(-4 * time.Second).Sub(p.now)
	p.now = p.now.Add(shift)
	for i := range p.events {
		p.events[i].at = p.events[i].at.Add(shift)
	}
	s := &p.status
	s.LastTransitionTime.Time = s.LastTransitionTime.Add(shift)
	for _, t := range []**metav1.Time{&s.LastAnalysisTime, &s.WaitingSince} {
		if *t != nil {
			moved := (*t).Add(shift)
			*t = &metav1.Time{Time: moved}
		}
	}
	for i := range s.Analysis {
		s.Analysis[i].Time.Time = s.Analysis[i].Time.Add(shift)
	}
	for i := range s.Conditions {
		c := &s.Conditions[i]
		c.LastUpdateTime.Time = c.LastUpdateTime.Add(shift)
		c.LastTransitionTime.Time = c.LastTransitionTime.Add(shift)
	}
}

func ptrInt32(v int32) *int32 { return &v }
