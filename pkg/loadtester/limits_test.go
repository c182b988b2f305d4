package loadtester

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicedev/sluice/pkg/hostlist"
)

// The exploit of issue 20: a hey command line that reads a file of the load
// tester (its ServiceAccount token) and POSTs it to any host. It must be
// refused before anything is sent, whatever the target.
func TestPost_RefusesHeySendingAFileOfTheLoadTester(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("service-account-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		targets *hostlist.List
		line    string
		want    []string
	}{
		{name: "the issue's line, default allow-list", targets: hostlist.MustParse(hostlist.Default),
			line: "hey -n 1 -m POST -D " + secret + " URL/", want: []string{"-n (1) cannot be less than -c (50)"}},
		{name: "one request, default allow-list", targets: hostlist.MustParse(hostlist.Default),
			line: "hey -n 1 -c 1 -m POST -D " + secret + " URL/", want: []string{"load test target refused", "127.0.0.1 is not in an allowed network", "-allowed-targets"}},
		{name: "one request to an allowed target", targets: testTargets,
			line: "hey -n 1 -c 1 -m POST -D " + secret + " URL/", want: []string{"hey -D " + secret + " refused", "-hey-body-dir", "-d instead"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t, ok200)
			s, ts := newTestServer(t, Config{AllowedTargets: tt.targets})
			status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{"cmd": strings.ReplaceAll(tt.line, "URL", tg.URL)}))
			if status/100 != 4 {
				t.Errorf("status = %d %q, want a 4xx", status, body)
			}
			for _, want := range tt.want {
				if !strings.Contains(body, want) {
					t.Errorf("body = %q, want it to contain %q", body, want)
				}
			}
			if s.runs.running() != 0 || tg.count.Load() != 0 {
				t.Errorf("%d runs started, the target got %d requests; want none", s.runs.running(), tg.count.Load())
			}
		})
	}
}

func TestPost_RefusesHeyTargetsOutsideTheAllowList(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{AllowedTargets: hostlist.MustParse(hostlist.Default)})
	tests := []struct{ cmd, want string }{
		{"hey -n 1 -c 1 http://app.example.com/", "the host app.example.com is not allowed (allowed: in-cluster)"},
		{"hey -n 1 -c 1 http://10.0.0.1/", "the IP address 10.0.0.1 is not in an allowed network"},
		{"hey -n 1 -c 1 http://169.254.169.254/computeMetadata/v1/", "169.254.169.254"},
		{"hey -n 1 -c 1 http://[::1]:9090/gate/open", "the IP address ::1"},
		{"hey -n 1 -c 1 -x 10.0.0.1:3128 http://podinfo.test/", "load test proxy -x refused"},
	}
	for _, tt := range tests {
		status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{"cmd": tt.cmd}))
		if status != http.StatusForbidden || !strings.Contains(body, tt.want) {
			t.Errorf("%s = %d %q, want 403 containing %q", tt.cmd, status, body, tt.want)
		}
	}
	if !hasMetric(metricsText(t, ts.URL), `sluice_loadtester_commands_total{canary="podinfo",namespace="test",result="refused",type="hey"}`, "5") {
		t.Error("the refused load tests are not counted")
	}
}

// Flagger's documented load test command lines pass the default policy.
func TestHeyLoad_AcceptsFlaggersDocumentedCommandsByDefault(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	for _, line := range []string{
		"hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/",
		"hey -z 2m -q 10 -c 2 -host www.example.com http://gateway-istio.istio-ingress/",
		"hey -z 1m -q 10 -c 2 -h2 -host app.example.com http://apisix-gateway.apisix/api/info",
		"hey -z 10m -q 10 -c 2 -host app.example.com http://skipper-ingress.kube-system",
		"hey -z 2m -q 10 -c 2 -host www.example.com -H 'Cookie: type=insider' http://gateway-istio.istio-ingress/",
		"hey -z 1m -q 5 -c 2 http://podinfo.test",
		"hey -z 2m -q 20 -c 2 http://podinfo-svc-canary.test/",
		"hey -z 1m -q 10 -c 2 http://podinfo-canary.test.svc.cluster.local:9898/",
		"hey -n 200 http://podinfo-canary:9898/",
	} {
		line, err := parseCommandLine(line)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.heyLoad(line); err != nil {
			t.Errorf("%q refused: %v", line.words, err)
		}
	}
}

func TestHeyLoad_EnforcesTheCaps(t *testing.T) {
	s := New(Config{MaxLoadWorkers: 10, MaxLoadDuration: 5 * time.Minute, MaxLoadRate: 100})
	defer s.Close()
	tests := []struct {
		line, wantErr string
		wantQPS       float64
	}{
		{line: "hey -c 11 -z 1m http://podinfo.test/", wantErr: "hey -c 11 asks for more workers than this load tester allows (-max-load-workers=10)"},
		{line: "hey -z 6m -q 1 -c 1 http://podinfo.test/", wantErr: "hey -z 6m0s is longer than this load tester allows (-max-load-duration=5m0s)"},
		{line: "hey -z 1m -q 11 -c 10 http://podinfo.test/", wantErr: "hey asks for 110 requests per second (-q, -c); this load tester allows at most 100"},
		{line: "hey -z 5m -q 10 -c 10 http://podinfo.test/", wantQPS: 10},
		{line: "hey -n 20 -c 4 http://podinfo.test/", wantQPS: 25}, // no -q: paced at 100 requests per second in all
	}
	for _, tt := range tests {
		line, err := parseCommandLine(tt.line)
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.heyLoad(line)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || statusOf(err) != http.StatusForbidden):
			t.Errorf("%s = %v, want a 403 containing %q", tt.line, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || l.QPS != tt.wantQPS):
			t.Errorf("%s = QPS %g, %v; want QPS %g", tt.line, l.QPS, err, tt.wantQPS)
		}
	}
}

func TestPost_DoesNotExpandVariablesInCommands(t *testing.T) {
	t.Setenv(AuthTokenEnv, "s3cr3t") // not parallel: it sets the process's environment
	tg := newTarget(t, ok200)
	_, ts := newTestServer(t, Config{LookPath: fakeBinaries(t), AllowedCommands: []string{"helm"}})
	tests := []struct {
		name     string
		metadata map[string]string
		want     string
	}{
		{name: "hey", metadata: map[string]string{"cmd": `hey -n 1 -c 1 -H "Authorization: Bearer $LOADTESTER_AUTH_TOKEN" ` + tg.URL},
			want: "the hey command line uses the variable expansion $LOADTESTER_AUTH_TOKEN"},
		{name: "hey with command substitution", metadata: map[string]string{"cmd": "hey -n 1 -c 1 -d \"$(cat /etc/passwd)\" " + tg.URL},
			want: "command substitution"},
		{name: "helm", metadata: map[string]string{"type": "helm", "cmd": "test $LOADTESTER_AUTH_TOKEN"},
			want: "the helm arguments use the variable expansion $LOADTESTER_AUTH_TOKEN"},
	}
	for _, tt := range tests {
		status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", tt.metadata))
		if status != http.StatusBadRequest || !strings.Contains(body, tt.want) {
			t.Errorf("%s = %d %q, want 400 containing %q", tt.name, status, body, tt.want)
		}
	}
	if tg.count.Load() != 0 {
		t.Errorf("the target got %d requests, want none", tg.count.Load())
	}
}

func TestPost_KeepsTheAuthTokenOutOfCommandsEnvironment(t *testing.T) {
	t.Setenv(AuthTokenEnv, "s3cr3t") // not parallel: it sets the process's environment
	_, ts := newTestServer(t, Config{AllowedCommands: []string{"bash"}})
	status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{
		"type": "bash", "cmd": `echo "[$LOADTESTER_AUTH_TOKEN]"; env | grep -c LOADTESTER_AUTH_TOKEN`, "returnCmdOutput": "true"}))
	if status != http.StatusInternalServerError || !strings.HasPrefix(body, "running bash: exit status 1") || !strings.Contains(body, "[]\n0") {
		t.Errorf("status = %d %q, want the command to see no token (grep finding nothing)", status, body)
	}
}

func TestPost_CapsTheJobsRunningAtOnce(t *testing.T) {
	t.Parallel()
	s, ts := newTestServer(t, Config{MaxJobs: 2})
	target, inFlight, release := blockingTarget(t)
	hey := func(n int) map[string]string {
		return map[string]string{"cmd": "hey -n " + strings.Repeat("1", n) + " -c 1 " + target.URL}
	}
	for n := 1; n <= 2; n++ {
		if status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", hey(n))); status != http.StatusAccepted {
			t.Fatalf("load test %d = %d %q, want 202", n, status, body)
		}
	}
	eventually(t, "two load tests in flight", func() bool { return inFlight.Load() == 2 })
	status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", hey(3)))
	if status != http.StatusTooManyRequests || !strings.Contains(body, "too many commands are running: 2 of at most 2 (-max-jobs)") {
		t.Errorf("a third load test = %d %q, want 429", status, body)
	}
	if status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", hey(1))); status != http.StatusAccepted || !strings.Contains(body, "already running") {
		t.Errorf("a running load test again = %d %q, want 202 already running", status, body)
	}
	release()
	eventually(t, "the runs to finish", func() bool { return s.runs.running() == 0 })
	if status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", hey(3))); status != http.StatusAccepted {
		t.Errorf("after the runs ended = %d %q, want 202", status, body)
	}
}

func TestPost_ReadsHeyBodyFilesOnlyFromTheBodyDirectory(t *testing.T) {
	t.Parallel()
	outside := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "body.json"), []byte(`{"load":"test"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t, ok200)
	_, ts := newTestServer(t, Config{BodyDir: dir})
	tests := []struct {
		file       string
		wantStatus int
		want       string
	}{
		{file: "../" + filepath.Base(filepath.Dir(outside)) + "/token", wantStatus: 403, want: "only files in " + dir},
		{file: outside, wantStatus: 403, want: "only files in " + dir},
		{file: "link", wantStatus: 403, want: "only files in " + dir},
		{file: "missing.json", wantStatus: 400, want: "no such file"},
		{file: filepath.Join(dir, "body.json"), wantStatus: 202},
	}
	for _, tt := range tests {
		status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{"cmd": "hey -n 1 -c 1 -m POST -D " + tt.file + " " + tg.URL}))
		if status != tt.wantStatus || !strings.Contains(body, tt.want) {
			t.Errorf("-D %s = %d %q, want %d containing %q", tt.file, status, body, tt.wantStatus, tt.want)
		}
	}
	eventually(t, "the request with the body", func() bool { return tg.count.Load() == 1 })
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.body != `{"load":"test"}` {
		t.Errorf("the target got the body %q", tg.body)
	}
}

// A target may redirect a load test only to an allowed host.
func TestPost_FollowsRedirectsOnlyToAllowedTargets(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	other := &target{}
	other.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { other.count.Add(1) }))
	other.Listener = ln
	other.Start()
	t.Cleanup(other.Close)
	redirector := httptest.NewServer(http.RedirectHandler(other.URL+"/stolen", http.StatusTemporaryRedirect))
	t.Cleanup(redirector.Close)

	_, ts := newTestServer(t, Config{AllowedTargets: hostlist.MustParse("127.0.0.1")})
	if status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{"cmd": "hey -n 3 -c 1 -m POST -d data " + redirector.URL})); status != http.StatusAccepted {
		t.Fatalf("POST = %d %q, want 202", status, body)
	}
	eventually(t, "the load test to end", func() bool {
		return hasMetric(metricsText(t, ts.URL), `sluice_loadtester_commands_total{canary="podinfo",namespace="test",result="succeeded",type="hey"}`, "1")
	})
	if !hasMetric(metricsText(t, ts.URL), `sluice_loadtester_requests_total{canary="podinfo",code="error",namespace="test"}`, "3") {
		t.Error("the refused redirects are not counted as errors")
	}
	if other.count.Load() != 0 {
		t.Errorf("the host outside the allow-list got %d requests", other.count.Load())
	}
}
