package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func TestHTTPCaller_SucceedsOn200To202AndExplainsFailures(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		retries int32
		timeout string
		delay   time.Duration
		wantErr string
		calls   int32
	}{
		{name: "200 is success", status: 200, calls: 1},
		{name: "202 is success", status: 202, calls: 1},
		{name: "204 is a failure, as in Flagger", status: 204, wantErr: "status 204", calls: 1},
		{name: "500 keeps the start of the answer", status: 500, body: "load test failed: 42% errors", wantErr: "status 500: load test failed: 42% errors", calls: 1},
		{name: "retries repeat a failed call", status: 503, retries: 2, wantErr: "status 503", calls: 3},
		{name: "a slow webhook times out", status: 200, timeout: "50ms", delay: time.Second, wantErr: "no answer within 50ms", calls: 1},
		{name: "negative retries still call once", status: 200, retries: -1, calls: 1},
		{name: "negative retries still report a failure", status: 500, retries: -3, wantErr: "status 500", calls: 1},
		{name: "a timeout that is not a duration fails without a call", status: 200, timeout: "10sec", wantErr: `the timeout "10sec" of webhook h is not a duration`, calls: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			var mu sync.Mutex
			var got Payload
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("got %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
				}
				var p Payload
				if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
					t.Errorf("decoding payload: %v", err)
				}
				mu.Lock()
				got = p
				mu.Unlock()
				select {
				case <-time.After(tt.delay):
				case <-r.Context().Done():
					return
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			hook := flaggerv1beta1.CanaryWebhook{Name: "h", URL: srv.URL, Retries: tt.retries, Timeout: tt.timeout, Metadata: map[string]string{"cmd": "hey"}}
			p := Payload{Name: "podinfo", Namespace: "test", Phase: flaggerv1beta1.CanaryPhaseProgressing, Checksum: "abc", Metadata: hook.Metadata}
			err := (&HTTPCaller{}).Call(context.Background(), hook, p)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Call = %v, want success", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Call = %v, want an error containing %q", err, tt.wantErr)
			}
			srv.Close() // waits for the handlers, so got is settled
			mu.Lock()
			defer mu.Unlock()
			if calls.Load() != tt.calls {
				t.Errorf("%d calls, want %d", calls.Load(), tt.calls)
			}
			if tt.calls > 0 && (got.Name != "podinfo" || got.Namespace != "test" || got.Phase != "Progressing" || got.Checksum != "abc" || got.Metadata["cmd"] != "hey") {
				t.Errorf("payload = %+v", got)
			}
		})
	}
}

func TestHTTPCaller_ReportsConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := (&HTTPCaller{}).Call(context.Background(), flaggerv1beta1.CanaryWebhook{Name: "h", URL: url}, Payload{})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Call = %v, want connection refused", err)
	}
}

func TestNewEventPayload_PutsTheEventInMetadataOverTheHooks(t *testing.T) {
	cd := &flaggerv1beta1.Canary{}
	cd.Name, cd.Namespace, cd.Status.Phase, cd.Status.LastAppliedSpec = "podinfo", "test", flaggerv1beta1.CanaryPhaseFailed, "abc"
	hook := flaggerv1beta1.CanaryWebhook{Name: "events", Type: flaggerv1beta1.EventHook, Metadata: map[string]string{"eventType": "mine", "team": "a"}}
	p := NewEventPayload(cd, hook, "Warning", "Canary failed!", time.UnixMilli(1700000000123))
	want := map[string]string{"eventMessage": "Canary failed!", "eventType": "Warning", "timestamp": "1700000000123", "team": "a"}
	for k, v := range want {
		if p.Metadata[k] != v {
			t.Errorf("metadata[%s] = %q, want %q", k, p.Metadata[k], v)
		}
	}
	if p.Name != "podinfo" || p.Phase != "Failed" || p.Checksum != "abc" || hook.Metadata["eventType"] != "mine" {
		t.Errorf("payload %+v, hook metadata %v", p, hook.Metadata)
	}
}
