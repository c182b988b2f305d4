package metrics

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// recorder is an httptest handler that records the requests and answers
// every query with body.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
	queries []string
	status  int
	body    string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_ = req.ParseForm()
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.queries = append(r.queries, req.URL.Path+"?"+req.Form.Encode())
	status, body := r.status, r.body
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// vectorOf is a Prometheus answer with the given vector samples.
func vectorOf(samples ...string) string {
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`
}

func TestPrometheus_InterpretsAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   float64
		err    string
	}{
		{"one sample", 0, vectorOf(`{"metric":{},"value":[1700000000,"99.5"]}`), 99.5, ""},
		{"scalar", 0, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}`, 42, ""},
		{"no values", 0, vectorOf(), 0, "no values"},
		{"NaN", 0, vectorOf(`{"metric":{},"value":[1700000000,"NaN"]}`), 0, "NaN"},
		{"two series: the last one, as Flagger", 0, vectorOf(`{"metric":{"pod":"b"},"value":[1,"1"]}`, `{"metric":{"pod":"a"},"value":[1,"2"]}`), 2, ""},
		{"a range vector", 0, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}`, 0, "range vector"},
		{"bad query", http.StatusBadRequest, `{"status":"error","errorType":"bad_data","error":"parse error: unexpected end of input"}`, 0, "parse error: unexpected end of input"},
		{"unauthorized", http.StatusUnauthorized, `Unauthorized`, 0, "401"},
		{"server error", http.StatusServiceUnavailable, `{"status":"error","errorType":"unavailable","error":"overloaded"}`, 0, "server error: 503"},
		{"malformed", 0, `{"status":"success","data":`, 0, "querying Prometheus at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(&recorder{status: tc.status, body: tc.body})
			defer srv.Close()
			p, err := NewPrometheus(ProviderConfig{Address: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.RunQuery(context.Background(), "q")
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Errorf("got %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("got %v, %v; want an error containing %q", got, err, tc.err)
			}
		})
	}
}

func TestPrometheus_NoDataErrorsMatchErrNoValues(t *testing.T) {
	if !errors.Is(ErrNaN, ErrNoValues) {
		t.Error("ErrNaN does not match ErrNoValues")
	}
	if errors.Is(ErrNoValues, ErrNaN) {
		t.Error("ErrNoValues matches ErrNaN")
	}
}

func TestPrometheus_SendsCredentialsAndHeaders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		creds map[string]string
		want  map[string]string
	}{
		{"bearer token", map[string]string{"token": "s3cret"}, map[string]string{"Authorization": "Bearer s3cret", "X-Scope-Orgid": "tenant-1"}},
		{"basic auth", map[string]string{"username": "admin", "password": "pw"}, map[string]string{"Authorization": "Basic YWRtaW46cHc=", "X-Scope-Orgid": "tenant-1"}},
		{"no credentials", nil, map[string]string{"Authorization": "", "X-Scope-Orgid": "tenant-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{body: vectorOf(`{"metric":{},"value":[1,"1"]}`)}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			p, err := NewPrometheus(ProviderConfig{
				Address:     srv.URL,
				Credentials: tc.creds,
				Headers:     map[string][]string{"X-Scope-OrgID": {"tenant-1"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.RunQuery(context.Background(), `sum(rate(x[1m]))`); err != nil {
				t.Fatal(err)
			}
			if len(rec.headers) != 1 {
				t.Fatalf("got %d requests, want 1", len(rec.headers))
			}
			for k, v := range tc.want {
				if got := rec.headers[0].Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if !strings.HasPrefix(rec.queries[0], "/api/v1/query?") || !strings.Contains(rec.queries[0], "query=sum%28rate%28x%5B1m%5D%29%29") {
				t.Errorf("request %s is not an instant query of the PromQL", rec.queries[0])
			}
		})
	}
}

func TestPrometheus_RefusesIncompleteConfigurations(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ProviderConfig
		err  string
	}{
		{"no address", ProviderConfig{}, "no address"},
		{"username only", ProviderConfig{Address: "http://p", Credentials: map[string]string{"username": "u"}}, "username but not password"},
		{"password only", ProviderConfig{Address: "http://p", Credentials: map[string]string{"password": "p"}}, "password but not username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewPrometheus(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("got %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

func TestPrometheus_InsecureSkipVerifyAcceptsAnyCertificate(t *testing.T) {
	srv := httptest.NewUnstartedServer(&recorder{body: vectorOf(`{"metric":{},"value":[1,"1"]}`)})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	for _, tc := range []struct {
		name     string
		insecure bool
		err      string
	}{
		{"verified", false, "certificate"},
		{"insecureSkipVerify", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPrometheus(ProviderConfig{Address: srv.URL, InsecureSkipVerify: tc.insecure})
			if err != nil {
				t.Fatal(err)
			}
			ok, err := p.IsOnline(context.Background())
			if tc.err == "" {
				if !ok || err != nil {
					t.Errorf("IsOnline: %v, %v; want true", ok, err)
				}
				return
			}
			if ok || err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("IsOnline: %v, %v; want an error about the %s", ok, err, tc.err)
			}
		})
	}
}
