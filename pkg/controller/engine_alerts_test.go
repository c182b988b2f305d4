package controller

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/notifier"
	"github.com/sluicedev/sluice/pkg/recorder"
)

// slackInbox is a Slack incoming webhook that keeps the bodies it receives.
type slackInbox struct {
	mu     sync.Mutex
	bodies []string
}

func (s *slackInbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

func (s *slackInbox) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// inOrder reports whether each want appears in got, in this order, and
// returns the first that does not.
func inOrder(got []string, want []string) (bool, string) {
	i := 0
	for _, g := range got {
		if i < len(want) && strings.Contains(g, want[i]) {
			i++
		}
	}
	if i == len(want) {
		return true, ""
	}
	return false, want[i]
}

// TestEngine_RollbackIsToldThroughAlertsEventsAndMetrics rolls a canary back
// on a failing check and checks what people see: the Slack alerts in order,
// the Events on the Canary, and the metrics scraped over HTTP.
func TestEngine_RollbackIsToldThroughAlertsEventsAndMetrics(t *testing.T) {
	inbox := &slackInbox{}
	slack := httptest.NewServer(inbox)
	defer slack.Close()
	reg := prometheus.NewRegistry()
	rec, err := recorder.New(reg, "test", flaggerv1beta1.ProviderKubernetes)
	if err != nil {
		t.Fatal(err)
	}
	scrape := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer scrape.Close()
	dispatcher, err := notifier.NewDispatcher(notifier.Options{Reader: env.Client, Workers: 1, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = dispatcher.Start(ctx) }()

	h := newHarness(t, func(r *CanaryReconciler) { r.Notifier, r.Metrics = dispatcher, rec })
	h.metrics.set(0.1)
	provider := &flaggerv1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "on-call"},
		Spec:       flaggerv1beta1.AlertProviderSpec{Type: flaggerv1beta1.AlertProviderSlack, Channel: "deploys", Address: slack.URL},
	}
	h.create(provider, newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.Alerts = []flaggerv1beta1.CanaryAlert{{Name: "on-call", Severity: flaggerv1beta1.SeverityInfo, ProviderRef: flaggerv1beta1.CrossNamespaceObjectReference{Name: "on-call"}}}
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	h.metrics.set(7.5)
	h.setImage("podinfo", "ghcr.io/example/podinfo:bad")
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseFailed)

	// Alerts go out at Flagger's milestones only, with Flagger's texts and
	// severities; the Events tell every step.
	alerts := []string{
		`"text":"New Deployment detected, initialization completed."`,
		`"text":"New revision detected, progressing canary analysis."`,
		`"text":"Failed checks threshold reached 2"`,
	}
	h.eventually("the alerts to be the milestones, in order", func() (bool, string) {
		got := inbox.all()
		ok, missing := inOrder(got, alerts)
		return ok && len(got) == len(alerts), fmt.Sprintf("%d alerts, missing %s in\n%s", len(got), missing, strings.Join(got, "\n"))
	})
	if got := inbox.all(); !strings.Contains(got[2], `"color":"danger"`) || !strings.Contains(got[0], `"title":"Target","value":"Deployment/podinfo.`+h.ns+`"`) {
		t.Errorf("the rollback is not an error alert or the first alert has no target: %s", strings.Join(got, "\n"))
	}
	story := []string{
		"New Canary detected: initializing podinfo",
		"Initialization done!",
		"New revision detected! Scaling up podinfo",
		"Halt advancement of podinfo: metric error-rate failed: 7.5 is above the maximum 1",
		"Halt advancement of podinfo: metric error-rate failed: 7.5 is above the maximum 1",
		"Rolling back podinfo: failed checks threshold reached 2",
		"Canary failed! Scaling down podinfo",
	}
	h.eventually("the Events to tell every step", func() (bool, string) {
		var list corev1.EventList
		if err := h.c.List(context.Background(), &list, client.InNamespace(h.ns)); err != nil {
			return false, err.Error()
		}
		var msgs []string
		for _, e := range list.Items {
			if e.InvolvedObject.Name == "podinfo" && e.Reason == "Synced" {
				msgs = append(msgs, e.Message)
			}
		}
		for _, want := range story {
			found := false
			for _, m := range msgs {
				found = found || strings.Contains(m, want)
			}
			if !found {
				return false, "no event " + want
			}
		}
		return true, ""
	})

	resp, err := http.Get(scrape.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{
		`flagger_canary_status{name="podinfo",namespace="` + h.ns + `"} 2`,
		`flagger_canary_failures_total{analysis_status="completed",deployment_strategy="blue-green",name="podinfo",namespace="` + h.ns + `"} 1`,
		`flagger_canary_metric_analysis{metric="error-rate",name="podinfo",namespace="` + h.ns + `"} 7.5`,
		`flagger_canary_weight{namespace="` + h.ns + `",workload="podinfo-primary"} 100`,
		`sluice_notifications_sent_total{provider="slack"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
