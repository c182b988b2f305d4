package loadtester

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/sluicedev/sluice/pkg/hostlist"
	"github.com/sluicedev/sluice/pkg/webhook"
)

// testTargets let the tests' load tests reach their httptest targets on
// loopback, besides the default in-cluster names.
var testTargets = hostlist.MustParse("in-cluster,127.0.0.0/8")

// newTestServer serves a load tester on loopback; the cleanup stops its
// commands before the test ends. Without AllowedTargets it allows
// testTargets; a test of the default passes hostlist.Default.
func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	cfg.Log = testr.New(t)
	if cfg.AllowedTargets == nil {
		cfg.AllowedTargets = testTargets
	}
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

// testClient fails a test that would otherwise hang on a request.
var testClient = &http.Client{Timeout: 10 * time.Second}

// post sends a webhook payload and returns the answer's status and body.
func post(t *testing.T, url string, p webhook.Payload) (int, string) {
	t.Helper()
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, http.MethodPost, url, body)
}

func do(t *testing.T, method, url string, body []byte) (int, string) {
	t.Helper()
	return doAuth(t, method, url, body, "")
}

// doAuth sends a request with an Authorization header (none when empty).
func doAuth(t *testing.T, method, url string, body []byte, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// cmdPayload is a POST / payload for a canary.
func cmdPayload(name, namespace string, metadata map[string]string) webhook.Payload {
	return webhook.Payload{Name: name, Namespace: namespace, Phase: "Progressing", Checksum: "abc", Metadata: metadata}
}

// eventuallyTimeout bounds every wait of the tests.
const eventuallyTimeout = 5 * time.Second

// eventually fails the test when cond is not true within eventuallyTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := eventuallyTimeout
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricsText returns the /metrics page of a load tester.
func metricsText(t *testing.T, baseURL string) string {
	t.Helper()
	status, body := do(t, http.MethodGet, baseURL+"/metrics", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics = %d", status)
	}
	return body
}

// hasMetric reports whether a /metrics page has a sample line starting
// with prefix (name and labels) and ending with value.
func hasMetric(page, prefix, value string) bool {
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, prefix) && strings.HasSuffix(line, " "+value) {
			return true
		}
	}
	return false
}
