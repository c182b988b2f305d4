package metrics

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// testGCPKey is the RSA key pair of the tests' service account, generated
// once.
var testGCPKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const (
	testGCPProject = "my-project"
	testGCPEmail   = "sluice-reader@my-project.iam.gserviceaccount.com"
	testGCPKeyID   = "0123456789abcdef"
	testMQL        = "fetch k8s_container | metric 'istio.io/service/server/response_latencies' | align delta(1m) | every 1m | group_by [], [p99: percentile(value.response_latencies, 99)]"
)

// serviceAccountKeyJSON is a service account JSON key for the test key
// pair whose token_uri is tokenURI, with the private key in PKCS #8.
func serviceAccountKeyJSON(t testing.TB, tokenURI string) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(testGCPKey())
	if err != nil {
		t.Fatal(err)
	}
	key, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     testGCPProject,
		"private_key_id": testGCPKeyID,
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   testGCPEmail,
		"client_id":      "112233445566778899",
		"token_uri":      tokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(key)
}

// fakeGoogleAuth is Google's token endpoint (POST /token, which checks the
// JWT bearer grant the way Google does: form, RS256 signature against the
// test key's public half, and claims) and a GCE metadata server (GET
// /computeMetadata/v1/instance/service-accounts/default/token and
// /computeMetadata/v1/project/project-id with Metadata-Flavor: Google). It
// counts the tokens it issues.
type fakeGoogleAuth struct {
	t        testing.TB
	reject   string // an OAuth error code to answer the grant with, if any
	lifetime int    // expires_in of the tokens; 3599 when zero

	mu     sync.Mutex
	issued []string
}

func (f *fakeGoogleAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/token":
		if err := f.verifyGrant(r); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, err.Error())
			return
		}
		if f.reject != "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"error":%q,"error_description":"Invalid JWT Signature."}`, f.reject)
			return
		}
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d,"token_type":"Bearer"}`, f.issue("ya29.key"), f.expiresIn())
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/computeMetadata/v1/"):
		if r.Header.Get("Metadata-Flavor") != "Google" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "Missing Metadata-Flavor:Google header.")
			return
		}
		switch r.URL.Path {
		case "/computeMetadata/v1/instance/service-accounts/default/token":
			if scopes := r.URL.Query().Get("scopes"); scopes != stackdriverScope {
				f.t.Errorf("metadata token asked for scopes %q", scopes)
			}
			_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d,"token_type":"Bearer"}`, f.issue("ya29.metadata"), f.expiresIn())
		case "/computeMetadata/v1/project/project-id":
			_, _ = io.WriteString(w, testGCPProject)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	default:
		f.t.Errorf("auth request %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
	}
}

// expiresIn is the lifetime of the tokens, in seconds.
func (f *fakeGoogleAuth) expiresIn() int {
	if f.lifetime == 0 {
		return 3599
	}
	return f.lifetime
}

// issue records and returns a new token.
func (f *fakeGoogleAuth) issue(prefix string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok := fmt.Sprintf("%s.%d", prefix, len(f.issued)+1)
	f.issued = append(f.issued, tok)
	return tok
}

// tokens returns the tokens issued so far.
func (f *fakeGoogleAuth) tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.issued...)
}

// verifyGrant checks a JWT bearer grant as Google's token endpoint does:
// the form, the RS256 signature against the test key's public half, and
// the claims (the service account, the monitoring.read scope, this
// endpoint as audience, one hour of validity).
func (f *fakeGoogleAuth) verifyGrant(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		return fmt.Errorf("content type %q", ct)
	}
	if err := r.ParseForm(); err != nil {
		return err
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return fmt.Errorf("grant_type %q", g)
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		return fmt.Errorf("the assertion has %d parts, want 3", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("signature encoding: %w", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&testGCPKey().PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("Invalid JWT Signature: %w", err)
	}
	var header map[string]string
	var claims struct {
		Iss, Scope, Aud string
		Iat, Exp        int64
	}
	for i, into := range []any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return fmt.Errorf("part %d: %w", i+1, err)
		}
		if err := json.Unmarshal(raw, into); err != nil {
			return fmt.Errorf("part %d: %w", i+1, err)
		}
	}
	wantAud := "http://" + r.Host + "/token"
	switch {
	case header["alg"] != "RS256" || header["typ"] != "JWT" || header["kid"] != testGCPKeyID:
		return fmt.Errorf("header %v", header)
	case claims.Iss != testGCPEmail:
		return fmt.Errorf("iss %q", claims.Iss)
	case claims.Scope != "https://www.googleapis.com/auth/monitoring.read":
		return fmt.Errorf("scope %q", claims.Scope)
	case claims.Aud != wantAud:
		return fmt.Errorf("aud %q, want %s", claims.Aud, wantAud)
	case claims.Exp-claims.Iat != 3600:
		return fmt.Errorf("exp - iat = %d, want 3600", claims.Exp-claims.Iat)
	}
	return nil
}

// newFakeGoogleAuth starts the fake token endpoint and metadata server.
func newFakeGoogleAuth(t testing.TB) (*fakeGoogleAuth, *httptest.Server) {
	t.Helper()
	f := &fakeGoogleAuth{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// stackdriverSeriesJSON is one series of a timeSeries.query answer with the
// given label values and points (value JSON, end time).
func stackdriverSeriesJSON(labels []string, points ...[2]string) string {
	lvs := make([]string, len(labels))
	for i, l := range labels {
		lvs[i] = fmt.Sprintf(`{"stringValue":%q}`, l)
	}
	pts := make([]string, len(points))
	for i, p := range points {
		pts[i] = fmt.Sprintf(`{"values":[%s],"timeInterval":{"startTime":"2024-05-01T10:0%d:00Z","endTime":%q}}`, p[0], i, p[1])
	}
	return `{"labelValues":[` + strings.Join(lvs, ",") + `],"pointData":[` + strings.Join(pts, ",") + `]}`
}

// stackdriverAnswerJSON is a whole answer with the given series, label keys
// and extra top-level fields.
func stackdriverAnswerJSON(keys []string, extra string, series ...string) string {
	lds := make([]string, len(keys))
	for i, k := range keys {
		lds[i] = fmt.Sprintf(`{"key":%q}`, k)
	}
	s := `{"timeSeriesDescriptor":{"labelDescriptors":[` + strings.Join(lds, ",") +
		`],"pointDescriptors":[{"key":"p99","valueType":"DOUBLE","metricKind":"GAUGE","unit":"ms"}]},"timeSeriesData":[` + strings.Join(series, ",") + `]`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func TestStackdriver_RunsMQLAndReadsTheNewestPointOfTheOneSeries(t *testing.T) {
	auth, authSrv := newFakeGoogleAuth(t)
	key := serviceAccountKeyJSON(t, authSrv.URL+"/token")
	check := func(t *testing.T, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req map[string]any
		if err := json.Unmarshal(body, &req); err != nil || req["query"] != testMQL || len(req) != 1 {
			t.Errorf("body %s (%v): want {\"query\": the MQL}", body, err)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v3/projects/my-project/timeSeries:query" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %s, Content-Type %q", r.Method, r.URL, r.Header.Get("Content-Type"))
		}
		tokens := auth.tokens()
		if len(tokens) == 0 || r.Header.Get("Authorization") != "Bearer "+tokens[len(tokens)-1] {
			t.Errorf("Authorization %q, issued %v", r.Header.Get("Authorization"), tokens)
		}
	}
	one := func(points ...[2]string) string {
		return stackdriverAnswerJSON(nil, "", stackdriverSeriesJSON(nil, points...))
	}
	const t0, t1, t2 = "2024-05-01T10:01:00Z", "2024-05-01T10:02:00Z", "2024-05-01T10:03:00.5Z"
	cases := []httpCase{
		{"one double", 0, one([2]string{`{"doubleValue":12.5}`, t2}), 12.5, nil},
		{"an int64 as a string", 0, one([2]string{`{"int64Value":"42"}`, t2}), 42, nil},
		{"the newest of several points", 0, one([2]string{`{"doubleValue":1}`, t1}, [2]string{`{"doubleValue":3}`, t2}, [2]string{`{"doubleValue":2}`, t0}), 3, nil},
		{"the first value column", 0, one([2]string{`{"doubleValue":7},{"doubleValue":8}`, t2}), 7, nil},
		{"no series", 0, stackdriverAnswerJSON(nil, ""), 0, []string{ErrNoValues.Error(), "no time series"}},
		{"an empty answer", 0, `{}`, 0, []string{ErrNoValues.Error()}},
		{"a series without points", 0, stackdriverAnswerJSON(nil, "", `{"labelValues":[],"pointData":[]}`), 0, []string{ErrNoValues.Error()}},
		{"partial errors", 0, stackdriverAnswerJSON(nil, `"partialErrors":[{"code":4,"message":"Query deadline exceeded in one region"}]`), 0,
			[]string{ErrNoValues.Error(), "partial errors: Query deadline exceeded in one region (code 4)"}},
		{"NaN", 0, one([2]string{`{"doubleValue":"NaN"}`, t2}), 0, []string{ErrNaN.Error()}},
		{"a distribution", 0, one([2]string{`{"distributionValue":{"count":"3","mean":2}}`, t2}), 0, []string{"stackdriver", "distribution", "percentile"}},
		{"a boolean", 0, one([2]string{`{"boolValue":true}`, t2}), 0, []string{"boolean true, not a number"}},
		{"two series", 0, stackdriverAnswerJSON([]string{"resource.pod_name", "metric.response_code"}, "",
			stackdriverSeriesJSON([]string{"podinfo-1", "200"}, [2]string{`{"doubleValue":1}`, t2}),
			stackdriverSeriesJSON([]string{"podinfo-2", "200"}, [2]string{`{"doubleValue":2}`, t2})), 0,
			[]string{"returned 2 time series", "group_by []", "{resource.pod_name=podinfo-1, metric.response_code=200}", "{resource.pod_name=podinfo-2"}},
		{"a bad query", http.StatusBadRequest,
			`{"error":{"code":400,"message":"Line 1, column 7: 'k8s_containr' is not a known resource type.","status":"INVALID_ARGUMENT"}}`, 0,
			[]string{"stackdriver at http://127.0.0.1", "400 Bad Request", "INVALID_ARGUMENT: Line 1, column 7: 'k8s_containr' is not a known resource type."}},
		{"no permission", http.StatusForbidden,
			`{"error":{"code":403,"message":"Permission monitoring.timeSeries.list denied (or the resource may not exist).","status":"PERMISSION_DENIED"}}`, 0,
			[]string{"403 Forbidden", "PERMISSION_DENIED: Permission monitoring.timeSeries.list denied", "check the credentials"}},
		{"quota", http.StatusTooManyRequests, `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}`, 0,
			[]string{"429", "RESOURCE_EXHAUSTED: Quota exceeded", "rate limiting"}},
		{"a server error without JSON", http.StatusBadGateway, `<html>bad gateway</html>`, 0, []string{"502 Bad Gateway", "<html>bad gateway</html>"}},
		{"malformed JSON", 0, `{"timeSeriesData":[`, 0, []string{"not a timeSeries.query result"}},
	}
	newP := func(address string) (Provider, error) {
		return NewStackdriver(ProviderConfig{
			Address:     address + "/",
			Credentials: map[string]string{"project": testGCPProject, "serviceAccountKey": key},
		})
	}
	runHTTPCases(t, cases, check, newP, "\n"+testMQL+"\n")
}

// pagedMonitoring answers timeSeries.query with the pages in order, each
// with a next page token but the last, and records the page tokens asked
// for.
type pagedMonitoring struct {
	t     *testing.T
	pages []string

	mu     sync.Mutex
	tokens []string
}

func (p *pagedMonitoring) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Query     string `json:"query"`
		PageToken string `json:"pageToken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		p.t.Errorf("body: %v", err)
	}
	p.mu.Lock()
	i := len(p.tokens)
	p.tokens = append(p.tokens, req.PageToken)
	p.mu.Unlock()
	extra := ""
	if i+1 < len(p.pages) {
		extra = fmt.Sprintf(`"nextPageToken":"page-%d"`, i+2)
	}
	_, _ = io.WriteString(w, stackdriverAnswerJSON([]string{"resource.pod_name"}, extra, p.pages[i]))
}

func TestStackdriver_FollowsPagesToCountTheSeries(t *testing.T) {
	_, authSrv := newFakeGoogleAuth(t)
	key := serviceAccountKeyJSON(t, authSrv.URL+"/token")
	point := [2]string{`{"doubleValue":0.5}`, "2024-05-01T10:03:00Z"}
	for _, tc := range []struct {
		name   string
		pages  []string
		want   float64
		err    string
		tokens []string
	}{
		{"an empty first page", []string{"", stackdriverSeriesJSON([]string{"a"}, point)}, 0.5, "", []string{"", "page-2"}},
		{"one series per page", []string{stackdriverSeriesJSON([]string{"a"}, point), stackdriverSeriesJSON([]string{"b"}, point), stackdriverSeriesJSON([]string{"c"}, point)},
			0, "returned 2 or more time series", []string{"", "page-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mon := &pagedMonitoring{t: t, pages: tc.pages}
			srv := httptest.NewServer(mon)
			defer srv.Close()
			p, err := NewStackdriver(ProviderConfig{Address: srv.URL, Credentials: map[string]string{"project": testGCPProject, "serviceAccountKey": key}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.RunQuery(context.Background(), testMQL)
			switch {
			case tc.err == "" && (err != nil || got != tc.want):
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("got %v, %v; want an error with %q", got, err, tc.err)
			}
			if strings.Join(mon.tokens, ",") != strings.Join(tc.tokens, ",") {
				t.Errorf("page tokens %q, want %q", mon.tokens, tc.tokens)
			}
		})
	}
}

// monitoringOK answers every timeSeries.query with one point and every
// metricDescriptors.list with one descriptor, and records the
// Authorization headers.
type monitoringOK struct {
	mu    sync.Mutex
	auths []string
}

func (m *monitoringOK) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.auths = append(m.auths, r.Header.Get("Authorization"))
	m.mu.Unlock()
	if r.URL.Path == "/v3/projects/my-project/metricDescriptors" && r.URL.Query().Get("pageSize") == "1" && r.Method == http.MethodGet {
		_, _ = io.WriteString(w, `{"metricDescriptors":[{"type":"agent.googleapis.com/agent/uptime"}],"nextPageToken":"x"}`)
		return
	}
	_, _ = io.WriteString(w, stackdriverAnswerJSON(nil, "", stackdriverSeriesJSON(nil, [2]string{`{"int64Value":"3"}`, "2024-05-01T10:03:00Z"})))
}

// authorizations returns the Authorization headers received so far.
func (m *monitoringOK) authorizations() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.auths...)
}

func TestStackdriver_IsOnlineListsOneMetricDescriptor(t *testing.T) {
	_, authSrv := newFakeGoogleAuth(t)
	var denied bool
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v3/projects/my-project/metricDescriptors" || r.URL.Query().Get("pageSize") != "1" ||
			!strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ya29.key.") {
			t.Errorf("request %s %s, Authorization %q", r.Method, r.URL, r.Header.Get("Authorization"))
		}
		mu.Lock()
		defer mu.Unlock()
		if denied {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":{"code":403,"message":"Permission monitoring.metricDescriptors.list denied","status":"PERMISSION_DENIED"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"metricDescriptors":[{"type":"actions.googleapis.com/smarthome_action/num_active_users"}],"nextPageToken":"abc"}`)
	}))
	defer srv.Close()
	p, err := newProvider(ProviderConfig{Type: "stackdriver", Address: srv.URL,
		Credentials: map[string]string{"project": testGCPProject, "serviceAccountKey": serviceAccountKeyJSON(t, authSrv.URL+"/token")}})
	if err != nil {
		t.Fatal(err)
	}
	if KindOf(p) != "stackdriver" {
		t.Errorf("kind %s", KindOf(p))
	}
	if ok, err := p.IsOnline(context.Background()); !ok || err != nil {
		t.Errorf("IsOnline: %v, %v; want true", ok, err)
	}
	mu.Lock()
	denied = true
	mu.Unlock()
	if ok, err := p.IsOnline(context.Background()); ok || err == nil || !strings.Contains(err.Error(), "PERMISSION_DENIED: Permission monitoring.metricDescriptors.list denied") {
		t.Errorf("IsOnline without permission: %v, %v; want false and the 403", ok, err)
	}
}

func TestStackdriver_OneProviderPerTemplateWhateverTheInterval(t *testing.T) {
	_, authSrv := newFakeGoogleAuth(t)
	mon := &monitoringOK{}
	monSrv := httptest.NewServer(mon)
	defer monSrv.Close()
	s := secret("gcloud-sa", map[string]string{"project": testGCPProject, "serviceAccountKey": serviceAccountKeyJSON(t, authSrv.URL+"/token")})
	s.Namespace = "gcp-tpl"
	create(t, namespace("gcp-tpl"), s, metricTemplate("gcp-tpl", "latency",
		flaggerv1beta1.MetricTemplateProvider{Type: "stackdriver", Address: monSrv.URL, SecretRef: &flaggerv1beta1.SecretReference{Name: "gcloud-sa"}},
		"fetch k8s_container | filter resource.namespace_name == '{{ namespace }}' | within {{ interval }}"))
	cd := canaryOf("istio", "podinfo")
	cd.Namespace = "gcp-tpl"
	r := NewResolver(env.Client, ResolverConfig{})
	var first Provider
	for _, interval := range []string{"1m", "5m"} {
		p, query, err := r.Resolve(context.Background(), cd, flaggerv1beta1.CanaryMetric{Name: "p99", Interval: interval,
			TemplateRef: &flaggerv1beta1.CrossNamespaceObjectReference{Name: "latency"}})
		if err != nil {
			t.Fatal(err)
		}
		if want := "fetch k8s_container | filter resource.namespace_name == 'gcp-tpl' | within " + interval; query != want {
			t.Errorf("query %q, want %q", query, want)
		}
		if v, err := p.RunQuery(context.Background(), query); err != nil || v != 3 {
			t.Errorf("RunQuery: %v, %v", v, err)
		}
		if first == nil {
			first = p
		} else if p != first {
			t.Error("another interval built another stackdriver provider, with its own token")
		}
	}
}

// isolateGoogle points Application Default Credentials at what the test
// sets only: no GOOGLE_APPLICATION_CREDENTIALS, no gcloud file (HOME is
// empty) and a metadata server at metadataHost (GCE_METADATA_HOST, so that
// no test ever probes the real metadata address).
func isolateGoogle(t *testing.T, metadataHost string) {
	t.Helper()
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	_ = os.Unsetenv("GOOGLE_APPLICATION_CREDENTIALS")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	t.Setenv("GCE_METADATA_HOST", metadataHost)
}

func TestStackdriver_ReusesTheAccessTokenUntilItExpires(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime int
		tokens   int
	}{
		{"an hour-long token serves every call", 3599, 1},
		{"an expiring token is replaced at every call", 5, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth, authSrv := newFakeGoogleAuth(t)
			auth.lifetime = tc.lifetime
			mon := &monitoringOK{}
			monSrv := httptest.NewServer(mon)
			defer monSrv.Close()
			p, err := NewStackdriver(ProviderConfig{Type: "stackdriver", Address: monSrv.URL,
				Credentials: map[string]string{"project": testGCPProject, "serviceAccountKey": serviceAccountKeyJSON(t, authSrv.URL+"/token")}})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if v, err := p.RunQuery(context.Background(), testMQL); err != nil || v != 3 {
					t.Fatalf("RunQuery: %v, %v", v, err)
				}
			}
			if ok, err := p.IsOnline(context.Background()); !ok || err != nil {
				t.Fatalf("IsOnline: %v, %v", ok, err)
			}
			issued := auth.tokens()
			if len(issued) != tc.tokens {
				t.Fatalf("issued %v for three calls, want %d", issued, tc.tokens)
			}
			auths := mon.authorizations()
			if last := auths[len(auths)-1]; last != "Bearer "+issued[len(issued)-1] {
				t.Errorf("last request sent %q, want the newest token %s", last, issued[len(issued)-1])
			}
		})
	}
}

// TestStackdriver_UsesApplicationDefaultCredentials runs queries with a
// Secret that has only the project, so that golang.org/x/oauth2/google
// finds the credentials: a key file named by GOOGLE_APPLICATION_CREDENTIALS,
// or the metadata server of GKE's workload identity.
func TestStackdriver_UsesApplicationDefaultCredentials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, authURL string)
		prefix string
	}{
		{"GOOGLE_APPLICATION_CREDENTIALS", func(t *testing.T, authURL string) {
			file := filepath.Join(t.TempDir(), "key.json")
			if err := os.WriteFile(file, []byte(serviceAccountKeyJSON(t, authURL+"/token")), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", file)
		}, "ya29.key."},
		{"workload identity (metadata server)", func(*testing.T, string) {}, "ya29.metadata."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth, authSrv := newFakeGoogleAuth(t)
			isolateGoogle(t, strings.TrimPrefix(authSrv.URL, "http://"))
			tc.setup(t, authSrv.URL)
			mon := &monitoringOK{}
			monSrv := httptest.NewServer(mon)
			defer monSrv.Close()
			p, err := NewStackdriver(ProviderConfig{Type: "stackdriver", Address: monSrv.URL, Credentials: map[string]string{"project": testGCPProject}})
			if err != nil {
				t.Fatal(err)
			}
			if v, err := p.RunQuery(context.Background(), testMQL); err != nil || v != 3 {
				t.Fatalf("RunQuery: %v, %v", v, err)
			}
			issued := auth.tokens()
			if len(issued) != 1 || !strings.HasPrefix(issued[0], tc.prefix) {
				t.Fatalf("issued %v, want one %s token", issued, tc.prefix)
			}
			if got := mon.authorizations(); len(got) != 1 || got[0] != "Bearer "+issued[0] {
				t.Errorf("the monitoring API saw %v, want the issued token", got)
			}
		})
	}
}

func TestStackdriver_ExplainsTokenFailures(t *testing.T) {
	auth, authSrv := newFakeGoogleAuth(t)
	auth.reject = "invalid_grant"
	mon := &monitoringOK{}
	monSrv := httptest.NewServer(mon)
	defer monSrv.Close()
	deadMetadata := httptest.NewServer(http.NotFoundHandler())
	deadHost := strings.TrimPrefix(deadMetadata.URL, "http://")
	deadMetadata.Close()
	for _, tc := range []struct {
		name  string
		creds map[string]string
		err   []string
	}{
		{"the token endpoint refuses the grant", map[string]string{"project": testGCPProject, "serviceAccountKey": serviceAccountKeyJSON(t, authSrv.URL+"/token")},
			[]string{"getting an access token failed", "invalid_grant"}},
		{"no metadata server", map[string]string{"project": testGCPProject}, []string{"getting an access token failed", "workload identity", deadHost}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateGoogle(t, deadHost)
			p, err := NewStackdriver(ProviderConfig{Type: "stackdriver", Address: monSrv.URL, Credentials: tc.creds})
			if err != nil {
				// Finding the metadata credentials asks the (dead)
				// server for the project: that failure is fine too, if
				// it says so.
				checkQuery(t, 0, err, 0, tc.err[2:])
				return
			}
			for _, call := range []func() error{
				func() error { _, err := p.RunQuery(context.Background(), testMQL); return err },
				func() error { _, err := p.IsOnline(context.Background()); return err },
			} {
				checkQuery(t, 0, call(), 0, tc.err)
			}
			if n := len(mon.authorizations()); n != 0 {
				t.Errorf("%d requests reached the monitoring API without a token", n)
			}
		})
	}
}

func TestStackdriver_RefusesBadSettings(t *testing.T) {
	_, authSrv := newFakeGoogleAuth(t)
	// A credential configuration that would make Sluice read a file of its
	// own and send it to a server of the Secret's author: it must be
	// refused before anything is read or sent.
	stolen := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(stolen, []byte("sluice-service-account-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the external account's token_url was called: %s", r.URL)
	}))
	defer thief.Close()
	external, _ := json.Marshal(map[string]any{
		"type": "external_account", "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
		"subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": thief.URL + "/token",
		"credential_source": map[string]any{"file": stolen},
	})
	for _, tc := range []struct {
		name  string
		creds map[string]string
		err   string
	}{
		{"no secret", nil, "stackdriver: the MetricTemplate's secretRef Secret has no project"},
		{"a blank project", map[string]string{"project": " \n"}, "has no project"},
		{"a key that is not JSON", map[string]string{"project": "p", "serviceAccountKey": "not json"}, "serviceAccountKey is not a service account JSON key"},
		{"a user credential", map[string]string{"project": "p", "serviceAccountKey": `{"type":"authorized_user","client_id":"x","refresh_token":"y"}`},
			"serviceAccountKey is not a service account JSON key"},
		{"an external account", map[string]string{"project": "p", "serviceAccountKey": string(external)}, "serviceAccountKey is not a service account JSON key"},
		{"a key without a private key", map[string]string{"project": "p", "serviceAccountKey": `{"type":"service_account","client_email":"x@y"}`},
			"getting an access token failed"},
		{"no credentials at all", map[string]string{"project": "p"}, "no Application Default Credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateGoogle(t, strings.TrimPrefix(authSrv.URL, "http://"))
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
			p, err := NewStackdriver(ProviderConfig{Type: "stackdriver", Credentials: tc.creds})
			if err == nil {
				// A key whose private key cannot sign fails at the first
				// token instead.
				_, err = p.RunQuery(context.Background(), testMQL)
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want one with %q", err, tc.err)
			}
		})
	}
}

func TestStackdriver_RefusesAnEmptyQueryAndDefaultsTheAddress(t *testing.T) {
	_, authSrv := newFakeGoogleAuth(t)
	p, err := NewStackdriver(ProviderConfig{Type: "stackdriver",
		Credentials: map[string]string{"project": "team/a", "serviceAccountKey": serviceAccountKeyJSON(t, authSrv.URL+"/token")}})
	if err != nil {
		t.Fatal(err)
	}
	if p.address != "https://monitoring.googleapis.com" {
		t.Errorf("address %s", p.address)
	}
	if _, err := p.RunQuery(context.Background(), "  \n"); err == nil || !strings.Contains(err.Error(), "the query is empty") {
		t.Errorf("empty query: %v", err)
	}
}
