package loadtester

import (
	"context"
	"net/http"
	"strings"
	"testing"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/hostlist"
	"github.com/sluicedev/sluice/pkg/webhook"
)

func TestGates_AreClosedUntilOpenedPerCanary(t *testing.T) {
	t.Parallel()
	type step struct {
		path       string
		canary     string // name.namespace
		wantStatus int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "gate: closed by default, open, close", steps: []step{
			{"/gate/check", "podinfo.test", 403},
			{"/gate/open", "podinfo.test", 202},
			{"/gate/check", "podinfo.test", 200},
			{"/gate/open", "podinfo.test", 202}, // opening twice keeps it open
			{"/gate/check", "podinfo.test", 200},
			{"/gate/close", "podinfo.test", 202},
			{"/gate/check", "podinfo.test", 403},
			{"/gate/close", "podinfo.test", 202}, // closing a closed gate is fine
		}},
		{name: "gate: per canary", steps: []step{
			{"/gate/open", "a.test", 202},
			{"/gate/check", "a.test", 200},
			{"/gate/check", "a.prod", 403},
			{"/gate/check", "b.test", 403},
		}},
		{name: "rollback: not requested by default, open, close", steps: []step{
			{"/rollback/check", "podinfo.test", 403},
			{"/rollback/open", "podinfo.test", 202},
			{"/rollback/check", "podinfo.test", 200},
			{"/rollback/check", "podinfo.prod", 403},
			{"/rollback/close", "podinfo.test", 202},
			{"/rollback/check", "podinfo.test", 403},
		}},
		{name: "rollback and gate are separate", steps: []step{
			{"/rollback/open", "podinfo.test", 202},
			{"/gate/check", "podinfo.test", 403},
			{"/gate/open", "podinfo.test", 202},
			{"/rollback/close", "podinfo.test", 202},
			{"/gate/check", "podinfo.test", 200},
		}},
		{name: "approve always passes, halt never does", steps: []step{
			{"/gate/approve", "podinfo.test", 200},
			{"/gate/halt", "podinfo.test", 403},
			{"/gate/open", "podinfo.test", 202},
			{"/gate/halt", "podinfo.test", 403},
			{"/gate/close", "podinfo.test", 202},
			{"/gate/approve", "podinfo.test", 200},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, ts := newTestServer(t, Config{})
			for i, s := range tt.steps {
				name, namespace, _ := strings.Cut(s.canary, ".")
				status, body := post(t, ts.URL+s.path, cmdPayload(name, namespace, nil))
				if status != s.wantStatus {
					t.Errorf("step %d: %s for %s = %d %q, want %d", i, s.path, s.canary, status, body, s.wantStatus)
				}
			}
		})
	}
}

func TestGates_RefuseBadPayloads(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{})
	for _, tt := range []struct{ path, body string }{
		{"/gate/check", "not json"},
		{"/gate/open", `{"namespace":"test"}`},
		{"/rollback/open", `{"name":"podinfo"}`},
	} {
		status, body := do(t, http.MethodPost, ts.URL+tt.path, []byte(tt.body))
		if status != http.StatusBadRequest {
			t.Errorf("%s with %s = %d %q, want 400", tt.path, tt.body, status, body)
		}
	}
	if status, _ := do(t, http.MethodGet, ts.URL+"/healthz", nil); status != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", status)
	}
}

// The controller's webhook client against the load tester: a
// confirm-promotion gate holds until someone opens it, a rollback hook
// passes once a rollback is requested, and a load test hook passes.
func TestWebhookCaller_WaitsForTheGateToOpen(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{})
	tg := newTarget(t, ok200)
	caller := &webhook.HTTPCaller{}
	cd := &flaggerv1beta1.Canary{}
	cd.Name, cd.Namespace, cd.Status.Phase = "podinfo", "test", flaggerv1beta1.CanaryPhaseProgressing
	call := func(typ flaggerv1beta1.HookType, path string, metadata map[string]string) error {
		hook := flaggerv1beta1.CanaryWebhook{Name: string(typ), Type: typ, URL: ts.URL + path, Metadata: metadata}
		return caller.Call(context.Background(), hook, webhook.NewPayload(cd, hook))
	}

	err := call(flaggerv1beta1.ConfirmPromotionHook, "/gate/check", nil)
	if err == nil || !strings.Contains(err.Error(), "status 403") || !strings.Contains(err.Error(), "gate closed for podinfo.test") {
		t.Fatalf("confirm-promotion before the gate opens = %v, want status 403 gate closed", err)
	}
	if err := call("", "/gate/open", nil); err != nil {
		t.Fatalf("opening the gate: %v", err)
	}
	if err := call(flaggerv1beta1.ConfirmPromotionHook, "/gate/check", nil); err != nil {
		t.Errorf("confirm-promotion after the gate opened = %v, want success", err)
	}

	if err := call(flaggerv1beta1.RollbackHook, "/rollback/check", nil); err == nil {
		t.Error("rollback hook passed before a rollback was requested")
	}
	if err := call("", "/rollback/open", nil); err != nil {
		t.Fatalf("requesting a rollback: %v", err)
	}
	if err := call(flaggerv1beta1.RollbackHook, "/rollback/check", nil); err != nil {
		t.Errorf("rollback hook after a rollback was requested = %v, want success", err)
	}

	if err := call(flaggerv1beta1.ConfirmRolloutHook, "/gate/halt", nil); err == nil {
		t.Error("a hook pointed at /gate/halt passed")
	}
	if err := call(flaggerv1beta1.ConfirmRolloutHook, "/gate/approve", nil); err != nil {
		t.Errorf("a hook pointed at /gate/approve = %v, want success", err)
	}
	if err := call(flaggerv1beta1.RolloutHook, "/", map[string]string{"cmd": "hey -n 5 -c 1 " + tg.URL}); err != nil {
		t.Errorf("load test hook = %v, want success", err)
	}
}

// tokenSource is a fixed webhook bearer token.
type tokenSource string

func (s tokenSource) Token(context.Context) (string, error) { return string(s), nil }

// The controller's webhook client sends the load tester's bearer token
// when it has one for the load tester's host.
func TestWebhookCaller_SendsTheLoadTestersToken(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{AuthToken: "lt-token"})
	cd := &flaggerv1beta1.Canary{}
	cd.Name, cd.Namespace = "podinfo", "test"
	hook := flaggerv1beta1.CanaryWebhook{Name: "open", URL: ts.URL + "/gate/open"}
	tests := []struct {
		name    string
		caller  *webhook.HTTPCaller
		wantErr string
	}{
		{name: "no token", caller: &webhook.HTTPCaller{}, wantErr: "status 401: missing or wrong bearer token"},
		{name: "a token for another host", caller: &webhook.HTTPCaller{Token: tokenSource("lt-token")}, wantErr: "status 401"},
		{name: "the token for this host", caller: &webhook.HTTPCaller{Token: tokenSource("lt-token"), TokenHosts: hostlist.MustParse("127.0.0.1")}},
	}
	for _, tt := range tests {
		err := tt.caller.Call(context.Background(), hook, webhook.NewPayload(cd, hook))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v, want success", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}
