package controller

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/loadtester"
	"github.com/sluicedev/sluice/pkg/webhook"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// allHookTypes are the webhook types of a Canary, each with its own path.
var allHookTypes = []flaggerv1beta1.HookType{
	flaggerv1beta1.ConfirmRolloutHook, flaggerv1beta1.PreRolloutHook, flaggerv1beta1.RolloutHook,
	flaggerv1beta1.ConfirmTrafficIncreaseHook, flaggerv1beta1.ConfirmPromotionHook,
	flaggerv1beta1.PostRolloutHook, flaggerv1beta1.RollbackHook, flaggerv1beta1.EventHook,
}

// TestEngine_CallsEveryHookTypeWithFlaggersPayload runs a canary release
// with one webhook of each type and compares the first payload each
// received with a golden JSON file.
func TestEngine_CallsEveryHookTypeWithFlaggersPayload(t *testing.T) {
	hooks := &hookRecorder{open: true}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/rollback" { // a rollback hook that says no
			var p webhook.Payload
			_ = json.NewDecoder(r.Body).Decode(&p)
			hooks.mu.Lock()
			hooks.payloads["/rollback"] = append(hooks.payloads["/rollback"], p)
			hooks.mu.Unlock()
			http.Error(w, "no rollback", http.StatusForbidden)
			return
		}
		hooks.ServeHTTP(w, r)
	}))
	defer srv.Close()
	hooks.payloads = map[string][]webhook.Payload{}
	h := newHarness(t)
	h.metrics.set(0)
	var specHooks []flaggerv1beta1.CanaryWebhook
	for _, ht := range allHookTypes {
		specHooks = append(specHooks, flaggerv1beta1.CanaryWebhook{
			Name: string(ht), Type: ht, URL: srv.URL + "/" + strings.TrimSuffix(string(ht), "-hook"), Metadata: map[string]string{"owner": "team-a"},
		})
	}
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider = flaggerv1beta1.ProviderIstio
		cd.Spec.Analysis.Iterations = nil
		cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = ptr.To[int32](50), ptr.To[int32](50)
		cd.Spec.Analysis.Webhooks = specHooks
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	h.eventually("every hook type to be called", func() (bool, string) {
		var missing []string
		for _, ht := range allHookTypes {
			if len(hooks.got("/"+string(ht))) == 0 {
				missing = append(missing, string(ht))
			}
		}
		return len(missing) == 0, strings.Join(missing, ", ")
	})
	for _, ht := range allHookTypes {
		p := hooks.got("/" + string(ht))[0]
		p.Namespace, p.Checksum = "test", "<checksum>"
		if p.Metadata["timestamp"] != "" {
			p.Metadata["timestamp"] = "<ms>"
		}
		got, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "hooks", string(ht)+".json")
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -run CallsEveryHookType -update)", err)
		}
		if !bytes.Equal(bytes.TrimSpace(want), got) {
			t.Errorf("%s payload differs from %s:\n%s", ht, golden, got)
		}
	}
}

// TestEngine_GatesOpenAndRollBackThroughTheLoadTester drives the gates
// with Sluice's own load tester, as users do with Flagger's: a revision waits
// at confirm-rollout and at confirm-promotion until /gate/open, and
// /rollback/open rolls the next one back mid-analysis.
func TestEngine_GatesOpenAndRollBackThroughTheLoadTester(t *testing.T) {
	lt := loadtester.New(loadtester.Config{})
	defer lt.Close()
	srv := httptest.NewServer(lt)
	defer srv.Close()
	h := newHarness(t)
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.Iterations = ptr.To[int32](6)
		cd.Spec.Analysis.Webhooks = []flaggerv1beta1.CanaryWebhook{
			{Name: "ask", Type: flaggerv1beta1.ConfirmRolloutHook, URL: srv.URL + "/gate/check"},
			{Name: "approve", Type: flaggerv1beta1.ConfirmPromotionHook, URL: srv.URL + "/gate/check"},
			{Name: "abort", Type: flaggerv1beta1.RollbackHook, URL: srv.URL + "/rollback/check"},
		}
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	waiting := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseWaiting)
	if c := findPromoted(waiting); c == nil || !strings.Contains(c.Message, srv.URL+"/gate/open") {
		t.Errorf("the waiting condition does not say how to open the gate: %+v", c)
	}
	post := func(path string) {
		body := `{"name":"podinfo","namespace":"` + h.ns + `"}`
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode > 202 {
			t.Fatalf("POST %s: %s", path, resp.Status)
		}
	}
	post("/gate/open")
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseProgressing)
	post("/gate/close")
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseWaitingPromotion)
	post("/gate/open")
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)

	// The next revision passes the gate at once and is rolled back mid-analysis.
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.2.0")
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseProgressing)
	post("/rollback/open")
	failed := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseFailed)
	if c := findPromoted(failed); c == nil || !strings.Contains(c.Message, "a rollback webhook asked for it: webhook abort") {
		t.Errorf("Failed condition = %+v, want the rollback webhook named", c)
	}
}
