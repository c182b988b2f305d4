package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// secretHeaders are the headers that carry a provider's credentials, and a
// template header that could carry a tenant's secret.
var secretHeaders = []string{"Authorization", "X-Query-Key", "Dd-Api-Key", "Dd-Application-Key", "X-Sf-Token", "X-Amz-Security-Token", "X-Scope-Orgid"}

// headerLog records the requests a server received and their secret
// headers.
type headerLog struct {
	mu      sync.Mutex
	seen    int
	secrets []string
}

func (l *headerLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen++
	for _, h := range secretHeaders {
		if v := r.Header.Get(h); v != "" {
			l.secrets = append(l.secrets, h+": "+v)
		}
	}
	w.WriteHeader(http.StatusInternalServerError)
}

func (l *headerLog) report() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen, append([]string(nil), l.secrets...)
}

// TestProviders_NeverReplayCredentialsToAnotherHost points every provider
// that sends credentials at a server that redirects each request (307,
// which keeps the method, body and headers) to a second server, on
// another host name. The second server must see neither a request nor a
// credential: the providers on Sluice's own HTTP client and the
// externalmetrics provider refuse to follow and say why; CloudWatch's SDK
// client does not replay a signed body to another host either.
func TestProviders_NeverReplayCredentialsToAnotherHost(t *testing.T) {
	isolateAWS(t)
	_, authSrv := newFakeGoogleAuth(t)
	elsewhere := &headerLog{}
	target := httptest.NewServer(elsewhere)
	defer target.Close()
	// The same server under another host name.
	targetURL := strings.Replace(target.URL, "127.0.0.1", "localhost", 1)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, targetURL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	tenant := map[string][]string{"X-Scope-OrgID": {"tenant-secret"}}
	for _, tc := range []struct {
		name  string
		cfg   ProviderConfig
		query string
		sdk   bool // the provider runs on its SDK's HTTP client, not Sluice's
	}{
		{"prometheus", ProviderConfig{Type: "prometheus", Headers: tenant, Credentials: map[string]string{"token": "prom-token"}}, "vector(1)", false},
		{"graphite", ProviderConfig{Type: "graphite", Credentials: map[string]string{"username": "u", "password": "p"}}, "target=x", false},
		{"influxdb", ProviderConfig{Type: "influxdb", Credentials: map[string]string{"token": "influx-token", "org": "o"}}, "from(bucket: \"b\")", false},
		{"newrelic", ProviderConfig{Type: "newrelic", Credentials: map[string]string{"newrelic_account_id": "1", "newrelic_query_key": "nr-key"}}, "SELECT count(*) FROM T", false},
		{"dynatrace", ProviderConfig{Type: "dynatrace", Credentials: map[string]string{"dynatrace_token": "dt-token"}}, "builtin:x", false},
		{"datadog", ProviderConfig{Type: "datadog", Credentials: map[string]string{"datadog_api_key": "dd-api", "datadog_application_key": "dd-app"}}, "avg:x{*}", false},
		{"stackdriver", ProviderConfig{Type: "stackdriver", Credentials: map[string]string{"project": testGCPProject, "serviceAccountKey": serviceAccountKeyJSON(t, authSrv.URL+"/token")}}, testMQL, false},
		{"splunk", ProviderConfig{Type: "splunk", Credentials: map[string]string{"sf_token_key": "sf-token"}}, "data('x').publish()", false},
		{"externalmetrics", ProviderConfig{Type: "externalmetrics", Credentials: map[string]string{"token": "ext-token"}}, "default/m", false},
		{"cloudwatch", ProviderConfig{Type: "cloudwatch", Region: testAWSRegion, Headers: tenant,
			Credentials: map[string]string{"aws_access_key_id": testAWSKeyID, "aws_secret_access_key": testAWSSecret, "aws_session_token": testAWSToken}},
			`[{"Id":"e1","Expression":"1"}]`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := elsewhere.report()
			tc.cfg.Address, tc.cfg.Timeout = redirector.URL, 2*time.Second
			p, err := newProvider(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.RunQuery(context.Background(), tc.query); err == nil {
				t.Fatal("the query succeeded against a redirect")
			} else if !tc.sdk && !strings.Contains(err.Error(), "another server than the configured") {
				t.Errorf("error %q does not say why the redirect was not followed", err)
			}
			seen, secrets := elsewhere.report()
			if seen != before || len(secrets) > 0 {
				t.Errorf("the other host got %d requests, with credentials %v", seen-before, secrets)
			}
		})
	}
}

// TestProviders_FollowRedirectsOnTheirOwnHost checks that a redirect on
// the configured host (a path moved) is followed with the credentials.
func TestProviders_FollowRedirectsOnTheirOwnHost(t *testing.T) {
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old/api/v1/query" {
			http.Redirect(w, r, "/new/api/v1/query", http.StatusTemporaryRedirect)
			return
		}
		auth = r.Header.Get("Authorization")
		_, _ = w.Write([]byte(vectorOf(`{"metric":{},"value":[1,"5"]}`)))
	}))
	defer srv.Close()
	p, err := NewPrometheus(ProviderConfig{Type: "prometheus", Address: srv.URL + "/old", Credentials: map[string]string{"token": "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.RunQuery(context.Background(), "vector(5)"); err != nil || v != 5 || auth != "Bearer t" {
		t.Errorf("got %v, %v with Authorization %q; want 5 with the token", v, err, auth)
	}
}

func TestRedact_HidesSecretsOfURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`Get "http://prom:9090/api/v1/query?query=up&token=abc123": EOF`, `Get "http://prom:9090/api/v1/query?query=up&token=REDACTED": EOF`},
		{"https://api.example.com/v1?api_key=k&x=1&access_token=t#frag", "https://api.example.com/v1?api_key=REDACTED&x=1&access_token=REDACTED#frag"},
		{"http://h/?apikey=1;sig=2&X-Amz-Signature=3&X-Amz-Credential=AKID%2F2026&X-Amz-Security-Token=4",
			"http://h/?apikey=REDACTED;sig=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED"},
		{"https://maps.example.com/?key=AIza", "https://maps.example.com/?key=REDACTED"},
		{"http://admin:hunter2@prom:9090/api", "http://admin:REDACTED@prom:9090/api"},
		{"dial tcp 10.0.0.1:9090: connection refused (query=sum(rate(x[1m])))", "dial tcp 10.0.0.1:9090: connection refused (query=sum(rate(x[1m])))"},
		{"http://h/?monkey=banana&turkey=1", "http://h/?monkey=banana&turkey=1"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q)\n got  %q\n want %q", tc.in, got, tc.want)
		}
	}
}

// TestAnalyze_RedactsURLSecretsFromChecks runs a check against a metrics
// server whose address carries a token in its query string and a
// password, and that fails: neither may reach the check's message, nor the
// error that stops an analysis from starting.
func TestAnalyze_RedactsURLSecretsFromChecks(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	for _, server := range []string{
		strings.Replace(deadURL, "http://", "http://admin:s3cr3t-pass@", 1) + "/prom?api_key=s3cr3t-key",
		deadURL + "/?token=s3cr3t-key&tenant=a",
	} {
		cd := canaryOf("istio", "podinfo")
		cd.Spec.MetricsServer = server
		cd.Spec.Analysis = &flaggerv1beta1.CanaryAnalysis{Metrics: []flaggerv1beta1.CanaryMetric{{
			Name: "errors", Query: `sum(rate(http_requests_total{code="500"}[1m]))`, ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(1.0)},
		}}}
		a := &Analyzer{Resolver: NewResolver(env.Client, ResolverConfig{QueryTimeout: time.Second})}
		r := a.Analyze(context.Background(), cd)[0]
		err := a.Check(context.Background(), cd)
		if r.Passed || err == nil {
			t.Fatalf("a dead server passed: %+v, %v", r, err)
		}
		for _, text := range []string{r.Message, r.Query, err.Error()} {
			if strings.Contains(text, "s3cr3t") {
				t.Errorf("a secret of %s leaked: %q", server, text)
			}
		}
		if !strings.Contains(r.Message+err.Error(), "REDACTED") {
			t.Errorf("nothing was redacted from %q / %q: the test proves nothing", r.Message, err)
		}
	}
}
