package loadtester

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// blockingTarget answers nothing until release is called, so the load tests
// against it keep running.
func blockingTarget(t *testing.T) (srv *httptest.Server, inFlight *atomic.Int64, release func()) {
	t.Helper()
	gate := make(chan struct{})
	inFlight = &atomic.Int64{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		select {
		case <-gate:
		case <-r.Context().Done():
		}
	}))
	var once atomic.Bool
	release = func() {
		if once.CompareAndSwap(false, true) {
			close(gate)
		}
	}
	t.Cleanup(srv.Close)
	t.Cleanup(release)
	return srv, inFlight, release
}

func TestPostCmd_RunsHeyInTheBackgroundOncePerCanaryAndCommand(t *testing.T) {
	t.Parallel()
	s, ts := newTestServer(t, Config{})
	target, inFlight, release := blockingTarget(t)
	hey := map[string]string{"type": "cmd", "cmd": "hey -n 2 -c 2 " + target.URL + "/"}

	// The target answers nothing yet: a synchronous run could not answer.
	status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", hey))
	if status != http.StatusAccepted || !strings.Contains(body, "command started") {
		t.Fatalf("first POST = %d %q, want 202 command started", status, body)
	}
	eventually(t, "the load test's requests", func() bool { return inFlight.Load() == 2 })

	status, body = post(t, ts.URL+"/", cmdPayload("podinfo", "test", hey))
	if status != http.StatusAccepted || !strings.Contains(body, "already running") {
		t.Errorf("same command again = %d %q, want 202 already running", status, body)
	}
	for _, other := range []struct{ name, namespace string }{{"podinfo", "prod"}, {"frontend", "test"}} {
		status, body = post(t, ts.URL+"/", cmdPayload(other.name, other.namespace, hey))
		if status != http.StatusAccepted || !strings.Contains(body, "command started") {
			t.Errorf("canary %s.%s = %d %q, want its own run started", other.name, other.namespace, status, body)
		}
	}
	eventually(t, "three runs in parallel", func() bool { return inFlight.Load() == 6 })
	if n := s.runs.running(); n != 3 {
		t.Errorf("%d runs in progress, want 3", n)
	}

	release()
	eventually(t, "the runs to finish", func() bool { return s.runs.running() == 0 })
	status, body = post(t, ts.URL+"/", cmdPayload("podinfo", "test", hey))
	if status != http.StatusAccepted || !strings.Contains(body, "command started") {
		t.Errorf("POST after the run finished = %d %q, want a new run", status, body)
	}
	eventually(t, "the new run to finish", func() bool { return s.runs.running() == 0 })

	page := metricsText(t, ts.URL)
	for _, want := range []string{
		`sluice_loadtester_requests_total{canary="podinfo",code="200",namespace="test"} 4`,
		`sluice_loadtester_requests_total{canary="frontend",code="200",namespace="test"} 2`,
		`sluice_loadtester_request_duration_seconds_count{canary="podinfo",namespace="test"} 4`,
		`sluice_loadtester_commands_total{canary="podinfo",namespace="test",result="succeeded",type="hey"} 2`,
		`sluice_loadtester_last_run_latency_seconds{canary="podinfo",namespace="test",quantile="0.99"}`,
		`sluice_loadtester_commands_running 0`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestClose_StopsLoadTestsAndRefusesNewOnes(t *testing.T) {
	t.Parallel()
	s, ts := newTestServer(t, Config{})
	tg := newTarget(t, ok200)
	status, _ := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{"cmd": "hey -z 20m -q 100 -c 2 " + tg.URL}))
	if status != http.StatusAccepted {
		t.Fatalf("POST = %d, want 202", status)
	}
	eventually(t, "the load test's requests", func() bool { return tg.count.Load() > 0 })
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the load test")
	}
	if !hasMetric(metricsText(t, ts.URL), `sluice_loadtester_commands_total{canary="podinfo",namespace="test",result="stopped",type="hey"}`, "1") {
		t.Error("the stopped run is not counted as stopped")
	}
	status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{"cmd": "hey -n 1 -c 1 " + tg.URL}))
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("POST after Close = %d %q, want 503 shutting down", status, body)
	}
}

func TestPostCmd_RunsOtherCommandsWithShInTheBackground(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{AllowedCommands: []string{"sh"}})
	status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{"cmd": "echo started | cat", "logCmdOutput": "true"}))
	if status != http.StatusAccepted || !strings.Contains(body, "command started") {
		t.Fatalf("POST = %d %q, want 202 command started", status, body)
	}
	eventually(t, "the command to succeed", func() bool {
		return hasMetric(metricsText(t, ts.URL), `sluice_loadtester_commands_total{canary="podinfo",namespace="test",result="succeeded",type="cmd"}`, "1")
	})
}

// fakeBinaries makes LookPath find sh, bash and a fake helm, kubectl, curl
// and grep that print their arguments; any other binary is missing.
func fakeBinaries(t *testing.T) func(string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	fakes := []string{"helm", "kubectl", "curl", "grep"}
	for _, name := range fakes {
		script := "#!/bin/sh\necho " + name + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil { //nolint:gosec // an executable script
			t.Fatal(err)
		}
	}
	return func(file string) (string, error) {
		switch file {
		case "sh", "bash":
			return exec.LookPath(file)
		}
		if slices.Contains(fakes, file) {
			return filepath.Join(dir, file), nil
		}
		return "", &exec.Error{Name: file, Err: exec.ErrNotFound}
	}
}

func TestPost_RunsSynchronousCommandsAndExplainsFailures(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{LookPath: fakeBinaries(t), AllowCommands: true})
	tests := []struct {
		name       string
		metadata   map[string]string
		wantStatus int
		wantBody   []string
	}{
		{name: "bash answers its output with logCmdOutput", metadata: map[string]string{"type": "bash", "cmd": "echo hi", "logCmdOutput": "true"},
			wantStatus: 200, wantBody: []string{"hi\n"}},
		{name: "bash answers its output with returnCmdOutput", metadata: map[string]string{"type": "bash", "cmd": "echo $((1+2))", "returnCmdOutput": "true"},
			wantStatus: 200, wantBody: []string{"3\n"}},
		{name: "bash answers nothing by default", metadata: map[string]string{"type": "bash", "cmd": "echo quiet"}, wantStatus: 200},
		{name: "a failing command answers 500 with its output", metadata: map[string]string{"type": "bash", "cmd": "echo token missing; exit 3"},
			wantStatus: 500, wantBody: []string{"exit status 3", "token missing"}},
		{name: "helm gets the command's words as arguments", metadata: map[string]string{"type": "helm", "cmd": "test podinfo --timeout '1m 30s'", "returnCmdOutput": "true"},
			wantStatus: 200, wantBody: []string{"helm test podinfo --timeout 1m 30s\n"}},
		{name: "helmv3 runs helm, a leading helm is dropped", metadata: map[string]string{"type": "helmv3", "cmd": "helm test podinfo", "returnCmdOutput": "true"},
			wantStatus: 200, wantBody: []string{"helm test podinfo\n"}},
		{name: "kubectl", metadata: map[string]string{"type": "kubectl", "cmd": "get pods -n test", "returnCmdOutput": "true"},
			wantStatus: 200, wantBody: []string{"kubectl get pods -n test\n"}},
		{name: "shell syntax is refused for helm", metadata: map[string]string{"type": "helm", "cmd": "test x | grep ok"},
			wantStatus: 400, wantBody: []string{"use type bash"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", tt.metadata))
			if status != tt.wantStatus {
				t.Errorf("status = %d %q, want %d", status, body, tt.wantStatus)
			}
			if len(tt.wantBody) == 0 && body != "" {
				t.Errorf("body = %q, want none", body)
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(body, want) {
					t.Errorf("body = %q, want it to contain %q", body, want)
				}
			}
		})
	}
}

func TestPost_NamesMissingBinaries(t *testing.T) {
	t.Parallel()
	lookPath := func(file string) (string, error) {
		if file == "sh" {
			return exec.LookPath(file)
		}
		return "", &exec.Error{Name: file, Err: exec.ErrNotFound}
	}
	_, ts := newTestServer(t, Config{LookPath: lookPath, AllowCommands: true})
	for _, md := range []map[string]string{
		{"type": "helm", "cmd": "test podinfo"},
		{"type": "kubectl", "cmd": "get pods"},
		{"type": "bash", "cmd": "echo hi"},
		{"type": "cmd", "cmd": "k6 run /scripts/load.js"},
	} {
		bin := map[string]string{"helm": "helm", "kubectl": "kubectl", "bash": "bash", "cmd": "k6"}[md["type"]]
		status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", md))
		if status != http.StatusInternalServerError || !strings.Contains(body, bin+" is not installed in the load tester") {
			t.Errorf("type %s = %d %q, want 500 naming %s", md["type"], status, body, bin)
		}
	}
}

func TestPost_RefusesBadPayloadsWithAReason(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{NamespaceRegexp: regexp.MustCompile(`^(test|prod)$`)})
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		want       string
	}{
		{name: "not JSON", body: "hey", wantStatus: 400, want: "decoding the webhook payload"},
		{name: "no metadata", body: `{"name":"a","namespace":"test"}`, wantStatus: 400, want: "no metadata"},
		{name: "no cmd", body: `{"name":"a","namespace":"test","metadata":{"type":"cmd"}}`, wantStatus: 400, want: "metadata.cmd is missing"},
		{name: "unknown type", body: `{"name":"a","namespace":"test","metadata":{"type":"jmeter","cmd":"x"}}`, wantStatus: 400, want: `unknown metadata.type "jmeter"`},
		{name: "Flagger type without support", body: `{"name":"a","namespace":"test","metadata":{"type":"ngrinder","cmd":"x"}}`, wantStatus: 400, want: "not supported"},
		{name: "unknown hey flag", body: `{"name":"a","namespace":"test","metadata":{"cmd":"hey -k http://x/"}}`, wantStatus: 400, want: "flag provided but not defined: -k"},
		{name: "unterminated quote", body: `{"name":"a","namespace":"test","metadata":{"cmd":"hey -H 'a: b http://x/"}}`, wantStatus: 400, want: "parsing the command line: 1:8: reached EOF without closing quote"},
		{name: "hey with shell syntax", body: `{"name":"a","namespace":"test","metadata":{"cmd":"hey -n 1 -c 1 http://x/?a=1&b=2"}}`, wantStatus: 400, want: `the hey command line uses &, which the in-process hey does not run`},
		{name: "namespace not served", body: `{"name":"a","namespace":"kube-system","metadata":{"cmd":"hey http://x/"}}`, wantStatus: 403, want: "not served"},
		{name: "GET", method: http.MethodGet, wantStatus: 405},
		{name: "unknown path", path: "/nope", body: `{}`, wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/"
			}
			status, body := do(t, method, ts.URL+path, []byte(tt.body))
			if status != tt.wantStatus || !strings.Contains(body, tt.want) {
				t.Errorf("%s = %d %q, want %d containing %q", tt.name, status, body, tt.wantStatus, tt.want)
			}
		})
	}
}

func TestExcerpt_KeepsTheEndOfLongOutput(t *testing.T) {
	long := strings.Repeat("x", 3*maxExcerpt) + "the error"
	got := excerpt([]byte(long))
	if !strings.HasSuffix(got, "the error") || len(got) > maxExcerpt+3 {
		t.Errorf("excerpt is %d bytes ending %q", len(got), got[len(got)-10:])
	}
	var b cappedBuffer
	_, _ = b.Write([]byte(strings.Repeat("y", maxOutput+10)))
	if out := b.Bytes(); len(out) > maxOutput+30 || !strings.HasSuffix(string(out), "[output truncated]\n") {
		t.Errorf("captured %d bytes, want at most %d and a truncation mark", len(out), maxOutput)
	}
}
