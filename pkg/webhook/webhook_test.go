package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/hostlist"
)

func TestHTTPCaller_SucceedsOn200To202AndExplainsFailures(t *testing.T) {
	t.Parallel()
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
		{name: "retries repeat a failed call", status: 503, retries: 2, timeout: "200ms", wantErr: "status 503 (after 3 attempts)", calls: 3},
		{name: "a slow webhook times out", status: 200, timeout: "50ms", delay: time.Second, wantErr: "no answer within 50ms", calls: 1},
		{name: "negative retries still call once", status: 200, retries: -1, calls: 1},
		{name: "negative retries still report a failure", status: 500, retries: -3, wantErr: "status 500", calls: 1},
		{name: "a timeout that is not a duration fails without a call", status: 200, timeout: "10sec", wantErr: `the timeout "10sec" of webhook h is not a duration`, calls: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
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
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := (&HTTPCaller{}).Call(context.Background(), flaggerv1beta1.CanaryWebhook{Name: "h", URL: url}, Payload{})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Call = %v, want connection refused", err)
	}
}

func TestHTTPCaller_RetriesOnlyWhatMaySucceedLater(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int // 0 closes the connection without an answer
		wantCalls int32
	}{
		{name: "500", status: 500, wantCalls: 3},
		{name: "503", status: 503, wantCalls: 3},
		{name: "429", status: 429, wantCalls: 3},
		{name: "a closed connection", status: 0, wantCalls: 3},
		{name: "501 is final", status: 501, wantCalls: 1},
		{name: "403 (a closed gate) is final", status: 403, wantCalls: 1},
		{name: "404 is final", status: 404, wantCalls: 1},
		{name: "302 is final", status: 302, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if tt.status == 0 {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						conn.Close()
					}
					return
				}
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			hook := flaggerv1beta1.CanaryWebhook{Name: "h", URL: srv.URL, Retries: 2, Timeout: "100ms"}
			if err := (&HTTPCaller{}).Call(context.Background(), hook, Payload{}); err == nil {
				t.Fatal("Call succeeded, want a failure")
			}
			if calls.Load() != tt.wantCalls {
				t.Errorf("%d calls, want %d", calls.Load(), tt.wantCalls)
			}
		})
	}
}

func TestHTTPCaller_NeverFollowsRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	for _, status := range []int{301, 302, 303, 307, 308} {
		srv := httptest.NewServer(http.RedirectHandler(other.URL+"/hook?token=s3cr3t", status))
		hook := flaggerv1beta1.CanaryWebhook{Name: "h", URL: srv.URL, Retries: 1, Timeout: "100ms"}
		for _, insecure := range []bool{false, true} {
			hook.DisableTLS = insecure
			err := (&HTTPCaller{}).Call(context.Background(), hook, Payload{})
			want := "webhooks do not follow redirects (Location: " + other.URL + "/hook?token=redacted)"
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("%d (disableTLS %v): Call = %v, want a failure containing %q", status, insecure, err, want)
			}
		}
		srv.Close()
	}
	if elsewhere.Load() != 0 {
		t.Errorf("the redirect target got %d calls, want none", elsewhere.Load())
	}
}

func TestHTTPCaller_KeepsTokensInURLsOutOfErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("bad request to " + r.URL.String() + " with api_key=k3y"))
	}))
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	defer srv.Close()
	for _, u := range []string{
		strings.Replace(srv.URL, "http://", "http://user:passw0rd@", 1) + "/hook?token=s3cr3t&access_token=s3cr3t&team=a",
		closedURL + "/hook?api_key=s3cr3t",
		"http://user:passw0rd@[::1]:99999/?token=s3cr3t",
		"ftp://h/?token=s3cr3t",
	} {
		err := (&HTTPCaller{}).Call(context.Background(), flaggerv1beta1.CanaryWebhook{Name: "h", URL: u, Timeout: "1s"}, Payload{})
		if err == nil {
			t.Fatalf("Call(%s) succeeded", u)
		}
		for _, secret := range []string{"s3cr3t", "passw0rd", "k3y"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error for %s shows %q: %v", u, secret, err)
			}
		}
		if !strings.Contains(err.Error(), Redacted) {
			t.Errorf("the error for %s = %v, want it redacted", u, err)
		}
	}
}

func TestHTTPCaller_WaitsLongerBetweenAttemptsAndStaysWithinItsBudget(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var arrivals []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	// timeout 400ms: the first wait is 100ms ±50%, the second 200ms ±50%.
	hook := flaggerv1beta1.CanaryWebhook{Name: "h", URL: srv.URL, Retries: 2, Timeout: "400ms"}
	if err := (&HTTPCaller{}).Call(context.Background(), hook, Payload{}); err == nil {
		t.Fatal("Call succeeded")
	}
	mu.Lock()
	if len(arrivals) != 3 {
		t.Fatalf("%d attempts, want 3", len(arrivals))
	}
	if gap := arrivals[1].Sub(arrivals[0]); gap < 50*time.Millisecond {
		t.Errorf("first wait %s, want at least 50ms", gap)
	}
	if gap := arrivals[2].Sub(arrivals[1]); gap < 100*time.Millisecond {
		t.Errorf("second wait %s, want at least 100ms", gap)
	}
	arrivals = nil
	mu.Unlock()

	// Many retries stop at timeout × attempts: 100ms × 11.
	hook = flaggerv1beta1.CanaryWebhook{Name: "h", URL: srv.URL, Retries: 10, Timeout: "100ms"}
	start := time.Now()
	err := (&HTTPCaller{}).Call(context.Background(), hook, Payload{})
	if elapsed := time.Since(start); elapsed > 1100*time.Millisecond+time.Second {
		t.Errorf("the call took %s, want at most its budget of 1.1s (and some slack)", elapsed)
	}
	if err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("Call = %v, want the last answer", err)
	}

	// And at the context's deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	hook = flaggerv1beta1.CanaryWebhook{Name: "h", URL: srv.URL, Retries: 10, Timeout: "10s"}
	start = time.Now()
	err = (&HTTPCaller{}).Call(ctx, hook, Payload{})
	if elapsed := time.Since(start); elapsed > 300*time.Millisecond+time.Second {
		t.Errorf("the call took %s past a 300ms deadline", elapsed)
	}
	if err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("Call = %v, want the last answer", err)
	}
}

func TestHTTPCaller_FollowsRetryAfter(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var arrivals []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		arrivals = append(arrivals, time.Now())
		if len(arrivals) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	hook := flaggerv1beta1.CanaryWebhook{Name: "h", URL: srv.URL, Retries: 1, Timeout: "2s"}
	if err := (&HTTPCaller{}).Call(context.Background(), hook, Payload{}); err != nil {
		t.Fatalf("Call = %v, want success on the second attempt", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 2 || arrivals[1].Sub(arrivals[0]) < time.Second {
		t.Errorf("attempts at %v, want the second one Retry-After (1s) later", arrivals)
	}
}

// countConns serves TLS and counts the connections opened to it.
func countConns(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestHTTPCaller_ReusesConnectionsAcrossCalls(t *testing.T) {
	t.Parallel()
	srv, conns := countConns(t)
	insecure := flaggerv1beta1.CanaryWebhook{Name: "h", URL: srv.URL, DisableTLS: true}
	verified := flaggerv1beta1.CanaryWebhook{Name: "h", URL: srv.URL}
	for i := range 5 {
		if err := (&HTTPCaller{}).Call(context.Background(), insecure, Payload{}); err != nil {
			t.Fatalf("call %d with disableTLS: %v", i, err)
		}
		if err := (&HTTPCaller{Transport: srv.Client().Transport}).Call(context.Background(), verified, Payload{}); err != nil {
			t.Fatalf("call %d verifying TLS: %v", i, err)
		}
	}
	// One connection for the shared insecure transport, one for the test's.
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections for 10 calls, want 2", n)
	}
	err := (&HTTPCaller{}).Call(context.Background(), verified, Payload{})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a call verifying TLS against a self-signed certificate = %v, want a certificate error", err)
	}
}

// staticToken is a TokenSource for tests.
type staticToken struct {
	token string
	err   error
	calls atomic.Int32
}

func (s *staticToken) Token(context.Context) (string, error) {
	s.calls.Add(1)
	return s.token, s.err
}

func TestHTTPCaller_SendsTheBearerTokenOnlyToAllowedHosts(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer srv.Close()
	hook := flaggerv1beta1.CanaryWebhook{Name: "h", URL: srv.URL}
	token := &staticToken{token: "t0ken"}

	if err := (&HTTPCaller{Token: token, TokenHosts: hostlist.MustParse("in-cluster,127.0.0.1")}).Call(context.Background(), hook, Payload{}); err != nil {
		t.Fatal(err)
	}
	// The default hosts are the cluster's Services: 127.0.0.1 is not one.
	if err := (&HTTPCaller{Token: token}).Call(context.Background(), hook, Payload{}); err != nil {
		t.Fatal(err)
	}
	if err := (&HTTPCaller{}).Call(context.Background(), hook, Payload{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 3 || got[0] != "Bearer t0ken" || got[1] != "" || got[2] != "" {
		t.Errorf("Authorization headers = %q, want the token on the first call only", got)
	}
	mu.Unlock()
	if token.calls.Load() != 1 {
		t.Errorf("the token was read %d times, want once (only for the allowed host)", token.calls.Load())
	}
	token.calls.Store(0)

	// A two-label name could be a Service (name.namespace) or an outside
	// domain: with the token it is only ever dialed as a Service.
	inCluster := hostlist.MustParse(hostlist.Default)
	inCluster.Cluster = hostlist.ClusterDNS{Domain: "cluster.local"}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	outside := flaggerv1beta1.CanaryWebhook{Name: "h", URL: "http://example.com:" + port + "/", Timeout: "2s"}
	err := (&HTTPCaller{Token: token, TokenHosts: inCluster}).Call(context.Background(), outside, Payload{})
	if err == nil || !strings.Contains(err.Error(), "example.com.svc.cluster.local") {
		t.Errorf("a token call to example.com = %v, want it dialed as the Service example.com.svc.cluster.local", err)
	}

	broken := &staticToken{err: errors.New("the Secret test/token does not exist")}
	err = (&HTTPCaller{Token: broken, TokenHosts: hostlist.MustParse("127.0.0.1")}).Call(context.Background(), hook, Payload{})
	if err == nil || !strings.Contains(err.Error(), "reading the webhook bearer token: the Secret test/token does not exist") {
		t.Errorf("Call with an unreadable token = %v", err)
	}
}

func TestNewEventPayload_PutsTheEventInMetadataOverTheHooks(t *testing.T) {
	t.Parallel()
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
