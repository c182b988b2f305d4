package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/testenv"
)

// testVersion is linked into the binary under test.
const testVersion = "v0.0.0-test"

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	errBuild  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// sluiceBinary builds ./cmd/sluice once per test run and returns its path.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := testenv.RepoRoot()
		if err != nil {
			errBuild = err
			return
		}
		if binDir, errBuild = os.MkdirTemp("", "sluice-test-"); errBuild != nil {
			return
		}
		binPath = filepath.Join(binDir, "sluice")
		cmd := exec.Command("go", "build", "-ldflags", "-X github.com/sluicedev/sluice/internal/version.Version="+testVersion, "-o", binPath, "./cmd/sluice")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			errBuild = fmt.Errorf("go build ./cmd/sluice: %w\n%s", err, out)
		}
	})
	if errBuild != nil {
		t.Fatal(errBuild)
	}
	return binPath
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// process is a running sluice binary.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, valid once exited is closed
}

// start runs the sluice binary with args. It kills the process when the test
// ends and prints its stderr when the test failed.
func start(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(sluiceBinary(t), args...), stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting sluice: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("sluice %s output:\n%s", strings.Join(args, " "), p.stderr.String())
		}
	})
	return p
}

// eventually polls cond every 200ms until it returns nil, failing the test
// after timeout or as soon as the process exits.
func eventually(t *testing.T, p *process, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("waiting for %s: sluice exited (%v); last check: %v", what, p.err, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not true after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// get returns the status and body of GET url.
func get(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// wantOK checks that GET url answers 200.
func wantOK(url string) func() error {
	return func() error {
		code, body, err := get(url)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET %s = %d: %s", url, code, body)
		}
		return nil
	}
}

// counter returns the value of the sample named exactly series (name and
// labels, as Prometheus' text format prints them) in a /metrics body.
func counter(body, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

func TestManager_TakesLeaseServesProbesAndMetricsAndStopsOnSIGTERM(t *testing.T) {
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatalf("starting the API server: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the API server: %v", err)
		}
	})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.Kubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	port := freePort(t)
	base := "http://127.0.0.1:" + port
	began := time.Now()
	p := start(t, "-kubeconfig", kubeconfig, "-enable-leader-election", "-leader-election-namespace", "default",
		"-port", port, "-log-level", "info", "-control-loop-interval", "5s")

	leaseKey := types.NamespacedName{Namespace: "default", Name: LeaderElectionID}
	var holder string
	eventually(t, p, time.Minute, "the Lease has a holder", func() error {
		var lease coordinationv1.Lease
		if err := env.Client.Get(ctx, leaseKey, &lease); err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return errors.New("no holderIdentity")
		}
		holder = *lease.Spec.HolderIdentity
		return nil
	})
	t.Logf("Lease held by %q after %s", holder, time.Since(began).Round(time.Millisecond))

	eventually(t, p, 30*time.Second, "/healthz answers 200", wantOK(base+"/healthz"))
	eventually(t, p, 30*time.Second, "/readyz answers 200", wantOK(base+"/readyz"))
	eventually(t, p, 5*time.Second, "/readyz/informers answers 200", wantOK(base+"/readyz/informers"))

	canary := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "default"},
		Spec: flaggerv1beta1.CanarySpec{
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   flaggerv1beta1.CanaryService{Port: 9898},
			Analysis: &flaggerv1beta1.CanaryAnalysis{
				Interval: "1m", Threshold: 5, StepWeight: ptr.To[int32](10), MaxWeight: ptr.To[int32](50),
			},
		},
	}
	if err := env.Client.Create(ctx, canary); err != nil {
		t.Fatalf("creating the Canary: %v", err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), canary) })

	eventually(t, p, 30*time.Second, "the canary controller counts a successful reconcile", func() error {
		code, body, err := get(base + "/metrics")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET /metrics = %d", code)
		}
		if !strings.Contains(body, `controller_runtime_reconcile_total{controller="canary"`) {
			return errors.New(`no controller_runtime_reconcile_total{controller="canary"} series`)
		}
		if n, ok := counter(body, `controller_runtime_reconcile_total{controller="canary",result="success"}`); !ok || n < 1 {
			return fmt.Errorf("successful reconciles = %v (found %v)", n, ok)
		}
		return nil
	})
	if out := p.stderr.String(); !strings.Contains(out, `"level":"warn"`) ||
		!strings.Contains(out, "flag -control-loop-interval is set but has no effect yet: Sluice requeues each Canary at its own analysis interval, so there is no loop to tune") {
		t.Errorf("no warning about -control-loop-interval in the log")
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM: %v", err)
	}
	stopping := time.Now()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("sluice did not exit within 30s of SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("sluice exited with %v after SIGTERM, want status 0", p.err)
	}
	t.Logf("exited 0 %s after SIGTERM", time.Since(stopping).Round(time.Millisecond))

	var lease coordinationv1.Lease
	if err := env.Client.Get(ctx, leaseKey, &lease); err != nil {
		t.Fatalf("reading the Lease: %v", err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("Lease holderIdentity = %q after shutdown, want it released", *h)
	}
}

func TestManager_VersionFlagPrintsVersionAndExitsZero(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(sluiceBinary(t), "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("sluice -version: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, "sluice "+testVersion+" go") || strings.Contains(got, "\n") {
		t.Errorf("sluice -version printed %q, want one line starting with %q", got, "sluice "+testVersion+" go")
	}
}

func TestManager_InvalidFlagExitsTwoWithOneLine(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(sluiceBinary(t), "-log-level", "verbose")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("sluice -log-level verbose: %v, want exit status 2\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); !strings.Contains(got, "-log-level") || strings.Contains(got, "\n") {
		t.Errorf("sluice -log-level verbose printed %q, want one line naming -log-level", got)
	}
}

func TestRestConfig_MasterOverridesKubeconfigAndClientLimitsApply(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	data := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://from-kubeconfig:6443"}
users:
- name: u
  user: {token: secret}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`
	if err := os.WriteFile(kubeconfig, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	tests := []struct {
		name     string
		opts     Options
		wantHost string
	}{
		{"KUBECONFIG through controller-runtime", Options{KubeconfigQPS: 100, KubeconfigBurst: 250}, "https://from-kubeconfig:6443"},
		{"-kubeconfig", Options{Kubeconfig: kubeconfig, KubeconfigQPS: 7, KubeconfigBurst: 9}, "https://from-kubeconfig:6443"},
		{"-master wins", Options{Kubeconfig: kubeconfig, Master: "https://from-flag:443", KubeconfigQPS: 1, KubeconfigBurst: 2}, "https://from-flag:443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := restConfig(&tt.opts)
			if err != nil {
				t.Fatalf("restConfig = %v", err)
			}
			if cfg.Host != tt.wantHost || cfg.BearerToken != "secret" {
				t.Errorf("host, token = %q, %q; want %q and the kubeconfig's token", cfg.Host, cfg.BearerToken, tt.wantHost)
			}
			if cfg.QPS != float32(tt.opts.KubeconfigQPS) || cfg.Burst != tt.opts.KubeconfigBurst {
				t.Errorf("QPS, Burst = %v, %v; want %v, %v", cfg.QPS, cfg.Burst, tt.opts.KubeconfigQPS, tt.opts.KubeconfigBurst)
			}
		})
	}
	if _, err := restConfig(&Options{Kubeconfig: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("restConfig(missing kubeconfig) = nil error, want one")
	}
}

func TestReadyz_FailsUntilTheCacheHasStarted(t *testing.T) {
	t.Parallel()
	s, err := testenv.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on this address; the cache is never started.
	c, err := cache.New(&rest.Config{Host: "http://127.0.0.1:1"}, cache.Options{Scheme: s})
	if err != nil {
		t.Fatalf("creating a cache: %v", err)
	}
	h := &healthz.Handler{Checks: map[string]healthz.Checker{"informers": cacheSynced(c)}}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code == http.StatusOK {
		t.Errorf("readyz with an unstarted cache = %d, want an error status:\n%s", rec.Code, rec.Body)
	}
}
