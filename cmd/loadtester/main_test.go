package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestParseFlags_TakesFlaggersFlagsWithTheirDefaults(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.port != 9090 || o.timeout != time.Hour || o.logLevel != "info" || o.zapEncoding != "json" || o.namespaceRegexp != "" ||
		o.allowCommands || o.allowedCommands != nil || o.authTokenFile != "" || o.allowedTargets.String() != "in-cluster" ||
		o.heyBodyDir != "" || o.maxJobs != 20 || o.maxLoadDuration != 30*time.Minute || o.maxLoadRate != 1000 || o.maxLoadWorkers != 200 ||
		o.resolvConf != "/etc/resolv.conf" {
		t.Errorf("defaults = %+v", o)
	}
	o, err = parseFlags([]string{"-allowed-targets=in-cluster, app.example.com,10.0.0.0/8", "-hey-body-dir=/bodies", "-max-jobs=3",
		"-max-load-duration=5m", "-max-load-rate=50", "-max-load-workers=4"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.allowedTargets.String() != "in-cluster,app.example.com,10.0.0.0/8" || o.heyBodyDir != "/bodies" || o.maxJobs != 3 ||
		o.maxLoadDuration != 5*time.Minute || o.maxLoadRate != 50 || o.maxLoadWorkers != 4 {
		t.Errorf("parsed = %+v", o)
	}
	o, err = parseFlags([]string{"-port=8080", "-timeout=30m", "-namespace-regexp=^test$", "-log-level=debug", "-zap-encoding=console", "-zap-replace-globals"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.port != 8080 || o.timeout != 30*time.Minute || o.namespaceRegexp != "^test$" || o.logLevel != "debug" || o.zapEncoding != "console" || !o.zapReplaceGlobals {
		t.Errorf("parsed = %+v", o)
	}
	o, err = parseFlags([]string{"-allow-commands", "-allowed-commands= helm,kubectl,,k6 ", "-allowed-commands=sh", "-auth-token-file=/etc/token"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.allowCommands || !slices.Equal(o.allowedCommands, []string{"helm", "kubectl", "k6", "sh"}) || o.authTokenFile != "/etc/token" {
		t.Errorf("parsed = %+v", o)
	}
	for _, bad := range [][]string{
		{"-port=70000"}, {"-timeout=0s"}, {"-log-level=loud"}, {"-zap-encoding=xml"}, {"-namespace-regexp=("}, {"-unknown"}, {"extra"},
		{"-allowed-targets=10.0.0.0/33"}, {"-allowed-targets=not a host"}, {"-max-jobs=0"}, {"-max-load-workers=0"},
		{"-max-load-duration=0s"}, {"-max-load-rate=0"}, {"-max-load-rate=NaN"}, {"-max-load-rate=+Inf"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", bad)
		}
	}
}

func TestAuthToken_ComesFromTheFileOrTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile, emptyFile := write("token", "from-file\n"), write("empty", " \n")
	tests := []struct {
		name    string
		file    string
		env     string
		want    string
		wantErr string
	}{
		{name: "neither: no auth"},
		{name: "the environment", env: " from-env\n", want: "from-env"},
		{name: "the file, its newline dropped", file: tokenFile, want: "from-file"},
		{name: "the file wins over the environment", file: tokenFile, env: "from-env", want: "from-file"},
		{name: "a missing file is an error", file: filepath.Join(dir, "missing"), wantErr: "reading -auth-token-file"},
		{name: "an empty file is an error", file: emptyFile, env: "from-env", wantErr: "holds no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k != authTokenEnv {
					t.Errorf("getenv(%q), want %s", k, authTokenEnv)
				}
				return tt.env
			}
			got, err := authToken(tt.file, getenv)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("authToken = %q, %v; want an error containing %q", got, err, tt.wantErr)
			case tt.wantErr == "" && (err != nil || got != tt.want):
				t.Errorf("authToken = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// lines collects a process's log lines for a test reading them.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) add(s string) { l.mu.Lock(); l.all = append(l.all, s); l.mu.Unlock() }

// find returns the first line containing s.
func (l *lines) find(s string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.all {
		if strings.Contains(line, s) {
			return line, true
		}
	}
	return "", false
}

func (l *lines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLoadtester_ServesTheAPIAndStopsOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "loadtester")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer target.Close()

	const token = "binary-test-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-port=0", "-timeout=1m", "-allowed-commands=true", "-auth-token-file="+tokenFile, "-allowed-targets=in-cluster,127.0.0.1")
	cmd.Env = append(os.Environ(), authTokenEnv+"=") // the file, not the caller's environment
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var logs lines
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.add(sc.Text())
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	var start string
	waitFor(t, "the start log line", func() (ok bool) { start, ok = logs.find("Starting the load tester"); return ok })
	var entry struct{ Address string }
	if err := json.Unmarshal([]byte(start), &entry); err != nil {
		t.Fatalf("the start line is not JSON: %v: %s", err, start)
	}
	_, port, err := net.SplitHostPort(entry.Address)
	if err != nil {
		t.Fatalf("address %q: %v", entry.Address, err)
	}
	base := "http://127.0.0.1:" + port
	client := &http.Client{Timeout: 5 * time.Second}
	send := func(method, path, body, authorization string) int {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}

	payload := `{"name":"podinfo","namespace":"test"}`
	command := func(cmd string) string {
		return `{"name":"podinfo","namespace":"test","metadata":{"cmd":"` + cmd + `"}}`
	}
	bearer := "Bearer " + token
	steps := []struct {
		method, path, body, authorization string
		want                              int
	}{
		{http.MethodGet, "/healthz", "", "", 200},
		{http.MethodPost, "/gate/open", payload, "", 401},
		{http.MethodPost, "/gate/open", payload, "Bearer wrong", 401},
		{http.MethodGet, "/metrics", "", "", 401},
		{http.MethodPost, "/gate/check", payload, bearer, 403},
		{http.MethodPost, "/gate/open", payload, bearer, 202},
		{http.MethodPost, "/gate/check", payload, bearer, 200},
		{http.MethodPost, "/", command("true"), bearer, 202},
		{http.MethodPost, "/", command("echo not allowed"), bearer, 403},
		{http.MethodPost, "/", command("hey -z 1m -q 20 -c 1 " + target.URL), bearer, 202},
		{http.MethodPost, "/", command("hey -z 1m -q 20 -c 1 http://app.example.com/"), bearer, 403},
		{http.MethodGet, "/metrics", "", bearer, 200},
	}
	for _, s := range steps {
		if got := send(s.method, s.path, s.body, s.authorization); got != s.want {
			t.Errorf("%s %s %s with Authorization %q = %d, want %d", s.method, s.path, s.body, s.authorization, got, s.want)
		}
	}
	waitFor(t, "the load test's requests", func() bool { return hits.Load() > 0 })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the load tester exited with %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the load tester did not stop on SIGTERM")
	}
	for _, want := range []string{"Command refused", `"binary":"echo"`, "Load test stopped", "The load tester stopped"} {
		if _, ok := logs.find(want); !ok {
			t.Errorf("no %q in the logs:\n%s", want, logs.text())
		}
	}
}
