package controller

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/webhook"
)

// hookRecorder is a webhook receiver that keeps every payload by path and
// answers gates from a switch the test flips.
type hookRecorder struct {
	mu       sync.Mutex
	payloads map[string][]webhook.Payload
	open     bool
}

func (hr *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p webhook.Payload
	_ = json.NewDecoder(r.Body).Decode(&p)
	hr.mu.Lock()
	defer hr.mu.Unlock()
	if hr.payloads == nil {
		hr.payloads = map[string][]webhook.Payload{}
	}
	hr.payloads[r.URL.Path] = append(hr.payloads[r.URL.Path], p)
	if r.URL.Path == "/gate" && !hr.open {
		http.Error(w, "gate closed", http.StatusForbidden)
	}
}

func (hr *hookRecorder) got(path string) []webhook.Payload {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	return append([]webhook.Payload(nil), hr.payloads[path]...)
}

func (hr *hookRecorder) setOpen(open bool) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	hr.open = open
}

func TestEngine_WebhooksGateAndHearTheOutcome(t *testing.T) {
	hooks := &hookRecorder{}
	srv := httptest.NewServer(hooks)
	defer srv.Close()
	h := newHarness(t)
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.Webhooks = []flaggerv1beta1.CanaryWebhook{
			{Name: "load", URL: srv.URL + "/load", Metadata: map[string]string{"cmd": "hey -z 1m http://podinfo-canary/"}},
			{Name: "approve", Type: flaggerv1beta1.ConfirmPromotionHook, URL: srv.URL + "/gate"},
			{Name: "done", Type: flaggerv1beta1.PostRolloutHook, URL: srv.URL + "/post"},
			{Name: "events", Type: flaggerv1beta1.EventHook, URL: srv.URL + "/events"},
		}
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	waiting := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseWaitingPromotion)
	if c := findPromoted(waiting); c == nil || !strings.Contains(c.Message, "403") {
		t.Errorf("WaitingPromotion condition = %+v, want the gate's answer", c)
	}
	hooks.setOpen(true)
	done := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)

	load := hooks.got("/load")
	if len(load) == 0 || load[0].Metadata["cmd"] != "hey -z 1m http://podinfo-canary/" || load[0].Phase != flaggerv1beta1.CanaryPhaseProgressing ||
		load[0].Checksum != done.Status.LastPromotedSpec || load[0].Name != "podinfo" || load[0].Namespace != h.ns {
		t.Errorf("rollout webhook payloads = %+v", load)
	}
	h.eventually("the post-rollout webhook", func() (bool, string) {
		post := hooks.got("/post")
		return len(post) == 1 && post[0].Phase == flaggerv1beta1.CanaryPhaseSucceeded, jsonOf(post)
	})
	h.eventually("the event webhook to hear the promotion", func() (bool, string) {
		for _, p := range hooks.got("/events") {
			if strings.Contains(p.Metadata["eventMessage"], "Promotion completed") && p.Metadata["eventType"] == "Normal" && p.Metadata["timestamp"] != "" {
				return true, ""
			}
		}
		return false, jsonOf(hooks.got("/events"))
	})
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
