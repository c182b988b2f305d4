//go:build e2e

package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/e2e/meshsim"
	"github.com/sluicedev/sluice/pkg/hostlist"
	"github.com/sluicedev/sluice/pkg/loadtester"
	"github.com/sluicedev/sluice/pkg/metrics/promtest"
)

// app is the workload, apex Service and Canary name in every scenario.
const app = "podinfo"

// scenario is one scenario's world: its namespace and, beside the shared
// control plane, its own load tester, Sluice process and, with a mesh, its
// own simulated mesh and Prometheus.
type scenario struct {
	t     *testing.T
	c     client.Client
	ns    string
	dir   string
	begin time.Time

	// sim and prom are nil without a mesh.
	sim  *meshsim.Sim
	prom *promtest.Server
	// loadTester is the load tester's base URL, without a trailing slash.
	loadTester string
	sluice     *sluiceProcess
}

// newScenario creates the namespace and starts the scenario's processes.
// With mesh, it also starts the simulated Istio mesh for the podinfo
// workload and a Prometheus scraping it, which Sluice queries. Everything
// is stopped when the test ends; on failure the Canary's status and the
// end of Sluice's log are printed first.
func newScenario(t *testing.T, mesh bool) *scenario {
	t.Helper()
	provider := ""
	if mesh {
		provider = meshsim.ProviderIstio
	}
	return newProviderScenario(t, provider)
}

// newProviderScenario is newScenario with the simulated mesh playing
// provider (meshsim.ProviderIstio or meshsim.ProviderGatewayAPI), or
// without a mesh when provider is empty.
func newProviderScenario(t *testing.T, provider string) *scenario {
	t.Helper()
	mesh := provider != ""
	if suite.cluster == nil {
		t.Fatal("the control plane is not running: run through TestMain (go test -tags e2e)")
	}
	s := &scenario{t: t, c: suite.cluster.Client, ns: namespaceFor(t.Name()), begin: time.Now()}
	s.dir = filepath.Join(suite.dir, s.ns)
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}
	if err := s.c.Create(s.t.Context(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", s.ns, err)
	}
	t.Cleanup(func() {
		// Background deletion: the control plane goes away with the package.
		_ = s.c.Delete(context.Background(), ns)
	})

	metricsServer := "http://127.0.0.1:9" // never queried: the scenario has no metrics
	if mesh {
		sim, err := meshsim.Start(s.t.Context(), meshsim.Options{Config: suite.cluster.Config, Namespace: s.ns, Workload: app, Provider: provider})
		if err != nil {
			t.Fatalf("starting the simulated mesh: %v", err)
		}
		t.Cleanup(sim.Stop)
		s.sim = sim
		prom, err := promtest.Start(s.t.Context(), map[string]string{"mesh": sim.MetricsURL})
		if err != nil {
			t.Fatalf("starting Prometheus: %v", err)
		}
		t.Cleanup(func() { _ = prom.Stop() })
		s.prom, metricsServer = prom, prom.URL
	}
	s.startLoadTester()

	p, err := startSluice(filepath.Join(s.dir, "sluice.log"), "-kubeconfig", suite.kubeconfig,
		"-namespace", s.ns, "-mesh-provider", "istio", "-metrics-server", metricsServer,
		"-log-level", "info", "-zap-encoding", "console")
	if err != nil {
		t.Fatal(err)
	}
	s.sluice = p
	t.Cleanup(func() {
		if err := s.sluice.stop(); err != nil {
			t.Errorf("stopping sluice: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			s.dump()
		}
		t.Logf("scenario took %s", time.Since(s.begin).Round(100*time.Millisecond))
	})
	return s
}

// namespaceFor turns a test name into a namespace name.
func namespaceFor(test string) string {
	name := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(test), "-"), "-")
	name = strings.TrimPrefix(name, "test")
	name = strings.TrimPrefix(name, "-")
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	return "e2e-" + name
}

// startLoadTester serves Sluice's load tester on a free loopback port. Its
// load tests go to the traffic simulator, on loopback too.
func (s *scenario) startLoadTester() {
	lt := loadtester.New(loadtester.Config{AllowedTargets: hostlist.MustParse("in-cluster,127.0.0.0/8")})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatalf("listening for the load tester: %v", err)
	}
	srv := &http.Server{Handler: lt, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	s.t.Cleanup(func() { lt.Close(); _ = srv.Close() })
	s.loadTester = "http://" + l.Addr().String()
}

// openGate opens the load tester's confirm gate for the Canary.
func (s *scenario) openGate() {
	s.t.Helper()
	body, _ := json.Marshal(map[string]string{"name": app, "namespace": s.ns})
	req, err := http.NewRequestWithContext(s.t.Context(), http.MethodPost, s.loadTester+"/gate/open", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("opening the gate: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		s.t.Fatalf("opening the gate: %s", resp.Status)
	}
}

// restartSluice kills Sluice with SIGKILL, as a node failure or an OOM
// would, and starts it again with the same flags.
func (s *scenario) restartSluice() {
	s.t.Helper()
	if err := s.sluice.kill(); err != nil {
		s.t.Fatalf("killing sluice: %v", err)
	}
	p, err := startSluice(s.sluice.logPath, s.sluice.args...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.sluice = p
}

// create creates the objects in the scenario's namespace.
func (s *scenario) create(objs ...client.Object) {
	s.t.Helper()
	for _, o := range objs {
		o.SetNamespace(s.ns)
		if err := s.c.Create(s.t.Context(), o); err != nil {
			s.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// get reads the named object of the scenario's namespace into o.
func (s *scenario) get(name string, o client.Object) error {
	return s.c.Get(s.t.Context(), client.ObjectKey{Namespace: s.ns, Name: name}, o)
}

// canary reads the Canary.
func (s *scenario) canary() (*flaggerv1beta1.Canary, error) {
	cd := &flaggerv1beta1.Canary{}
	return cd, s.get(app, cd)
}

// errStop ends a poll at once with its error.
var errStop = errors.New("stop polling")

// eventually calls check every 250ms until it reports done, fails the
// test when check returns an error wrapping errStop, and fails it after
// timeout saying what it waited for.
func (s *scenario) eventually(timeout time.Duration, what string, check func() (bool, error)) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		done, err := check()
		switch {
		case errors.Is(err, errStop):
			s.t.Fatalf("while waiting for %s: %v", what, err)
		case err == nil && done:
			return
		}
		last = err
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not happen in %s (last error: %v)", what, timeout, last)
		}
		select {
		case <-s.t.Context().Done():
			s.t.Fatalf("waiting for %s: %v", what, s.t.Context().Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitPhase waits until the Canary is in phase want, calling each (when
// set) with every Canary it reads. It stops early when the Canary ends in
// the other terminal phase.
func (s *scenario) waitPhase(want flaggerv1beta1.CanaryPhase, timeout time.Duration, each func(*flaggerv1beta1.Canary) error) {
	s.t.Helper()
	s.eventually(timeout, "phase "+string(want), func() (bool, error) {
		cd, err := s.canary()
		if err != nil {
			return false, err
		}
		if each != nil {
			if err := each(cd); err != nil {
				return false, err
			}
		}
		ph := cd.Status.Phase
		if ph != want && (ph == flaggerv1beta1.CanaryPhaseFailed || ph == flaggerv1beta1.CanaryPhaseSucceeded) &&
			want != flaggerv1beta1.CanaryPhaseProgressing {
			return false, fmt.Errorf("%w: the Canary ended %s: %s", errStop, ph, promotedMessage(cd))
		}
		return ph == want, nil
	})
	s.logf("Canary %s", want)
}

// waitProgressing waits until a change to the target is picked up: the
// Canary leaves its previous phase for Progressing.
func (s *scenario) waitProgressing() {
	s.t.Helper()
	s.waitPhase(flaggerv1beta1.CanaryPhaseProgressing, time.Minute, nil)
}

func promotedMessage(cd *flaggerv1beta1.Canary) string {
	for _, c := range cd.Status.Conditions {
		if c.Type == flaggerv1beta1.PromotedType {
			return c.Message
		}
	}
	return ""
}

func (s *scenario) logf(format string, args ...any) {
	s.t.Helper()
	s.t.Logf("%6s "+format, append([]any{time.Since(s.begin).Round(100 * time.Millisecond)}, args...)...)
}

// dump prints the Canary, the namespace's events and the end of Sluice's
// log, for a failed scenario.
func (s *scenario) dump() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cd := &flaggerv1beta1.Canary{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: app}, cd); err != nil {
		s.t.Logf("reading the Canary: %v", err)
	} else {
		st, _ := yaml.Marshal(cd.Status)
		s.t.Logf("Canary status:\n%s", st)
	}
	var events corev1.EventList
	if err := s.c.List(ctx, &events, client.InNamespace(s.ns)); err == nil {
		var b strings.Builder
		for _, e := range events.Items {
			fmt.Fprintf(&b, "  %s %s/%s %s: %s (x%d)\n", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message, e.Count)
		}
		s.t.Logf("events:\n%s", b.String())
	}
	if s.sim != nil {
		p, c := s.sim.Ready()
		s.t.Logf("meshsim: routes %+v, ready pods primary %d canary %d baseline %d", s.sim.Routes(), p, c, s.sim.ReadyBaseline())
	}
	s.t.Logf("sluice log (%s), last lines:\n%s", s.sluice.logPath, tail(s.sluice.logPath, 40))
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
