package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
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
	if o.port != 9090 || o.timeout != time.Hour || o.logLevel != "info" || o.zapEncoding != "json" || o.namespaceRegexp != "" {
		t.Errorf("defaults = %+v", o)
	}
	o, err = parseFlags([]string{"-port=8080", "-timeout=30m", "-namespace-regexp=^test$", "-log-level=debug", "-zap-encoding=console", "-zap-replace-globals"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.port != 8080 || o.timeout != 30*time.Minute || o.namespaceRegexp != "^test$" || o.logLevel != "debug" || o.zapEncoding != "console" || !o.zapReplaceGlobals {
		t.Errorf("parsed = %+v", o)
	}
	for _, bad := range [][]string{
		{"-port=70000"}, {"-timeout=0s"}, {"-log-level=loud"}, {"-zap-encoding=xml"}, {"-namespace-regexp=("}, {"-unknown"}, {"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", bad)
		}
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

	cmd := exec.Command(bin, "-port=0", "-timeout=1m")
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
	send := func(method, path, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
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
	steps := []struct {
		method, path, body string
		want               int
	}{
		{http.MethodGet, "/healthz", "", 200},
		{http.MethodPost, "/gate/check", payload, 403},
		{http.MethodPost, "/gate/open", payload, 202},
		{http.MethodPost, "/gate/check", payload, 200},
		{http.MethodPost, "/", `{"name":"podinfo","namespace":"test","metadata":{"cmd":"hey -z 1m -q 20 -c 1 ` + target.URL + `"}}`, 202},
		{http.MethodGet, "/metrics", "", 200},
	}
	for _, s := range steps {
		if got := send(s.method, s.path, s.body); got != s.want {
			t.Errorf("%s %s = %d, want %d", s.method, s.path, got, s.want)
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
	for _, want := range []string{"Load test stopped", "The load tester stopped"} {
		if _, ok := logs.find(want); !ok {
			t.Errorf("no %q in the logs:\n%s", want, logs.text())
		}
	}
}
