// Command demo plays Sluice's story on a local control plane: a healthy
// release is promoted step by step, then a faulty one is rolled back. It is
// what `make demo` runs; it needs no cluster, container runtime or network.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluicedev/sluice/e2e/cluster"
	"github.com/sluicedev/sluice/e2e/meshsim"
	"github.com/sluicedev/sluice/internal/testenv"
	"github.com/sluicedev/sluice/pkg/cli"
	"github.com/sluicedev/sluice/pkg/hostlist"
	"github.com/sluicedev/sluice/pkg/loadtester"
	"github.com/sluicedev/sluice/pkg/metrics/promtest"
)

const namespace = "demo"

func main() {
	keep := flag.Bool("keep", false, "leave the control plane, Sluice and the simulator running until Ctrl-C")
	flag.Parse()
	ctrl.SetLogger(logr.Discard()) // the demo prints its own story; components log to files
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// env is everything the demo started, stopped in reverse order.
type env struct {
	dir     string
	stops   []func()
	cluster *cluster.Cluster
}

func (e *env) onStop(f func()) { e.stops = append(e.stops, f) }

func (e *env) stop() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
}

func run(ctx context.Context, keep bool) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-demo-")
	if err != nil {
		return fmt.Errorf("creating the demo directory: %w", err)
	}
	e := &env{dir: dir}
	defer e.stop()

	say("Starting a local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK with 3 fake nodes")
	logs, err := os.Create(filepath.Join(dir, "control-plane.log"))
	if err != nil {
		return fmt.Errorf("creating the log file: %w", err)
	}
	c, err := cluster.Start(ctx, cluster.Options{Nodes: 3, Dir: dir, Log: logs})
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	e.cluster = c
	e.onStop(func() { _ = c.Stop() })
	if err := createNamespace(ctx, c); err != nil {
		return err
	}

	say("Starting the traffic simulator (Istio-shaped routing and metrics) and Prometheus")
	sim, err := meshsim.Start(ctx, meshsim.Options{Config: c.Config, Namespace: namespace, Apex: "podinfo", Workload: "podinfo"})
	if err != nil {
		return fmt.Errorf("starting the traffic simulator: %w", err)
	}
	e.onStop(sim.Stop)
	prom, err := promtest.Start(ctx, map[string]string{"mesh": sim.MetricsURL})
	if err != nil {
		return fmt.Errorf("starting Prometheus: %w", err)
	}
	e.onStop(func() { _ = prom.Stop() })

	ltURL, stopLT, err := startLoadTester()
	if err != nil {
		return err
	}
	e.onStop(stopLT)

	say("Starting Sluice (built from this tree) against the local API server")
	if err := startSluice(ctx, e, root, prom.URL); err != nil {
		return err
	}

	st := &story{c: c, start: time.Now()}
	if err := st.deploy(ctx, sim.ProxyURL, ltURL); err != nil {
		return err
	}
	if err := st.release(ctx, "6.1.0", 0, "Succeeded"); err != nil {
		return err
	}
	// kubectl sluice get --watch records the faulty release, as a person
	// following it in a pipe would see it.
	watchOut, err := os.Create(filepath.Join(dir, "get-watch.txt"))
	if err != nil {
		return fmt.Errorf("creating get-watch.txt: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		cli.Main(watchCtx, []string{"get", "podinfo", "-n", namespace, "--watch", "--kubeconfig", c.KubeconfigPath},
			cli.Options{Streams: genericiooptions.IOStreams{In: os.Stdin, Out: watchOut, ErrOut: watchOut}})
	}()
	err = st.release(ctx, "6.2.0", 0.3, "Failed")
	stopWatch()
	<-watchDone
	_ = watchOut.Close()
	if err != nil {
		return err
	}
	say("Why did podinfo:6.2.0 fail? kubectl sluice explain podinfo -n %s", namespace)
	cli.Main(ctx, []string{"explain", "podinfo", "-n", namespace, "--kubeconfig", c.KubeconfigPath},
		cli.Options{Streams: genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}})
	st.summary(c.KubeconfigPath, dir, keep)
	if keep {
		say("Everything keeps running (--keep). Try: KUBECONFIG=%s kubectl -n %s get canary,deploy,svc,virtualservice", c.KubeconfigPath, namespace)
		say("Press Ctrl-C to stop.")
		<-ctx.Done()
	}
	return nil
}

// startLoadTester serves Sluice's load tester on a free loopback port. Its
// load tests go to the traffic simulator, on loopback too.
func startLoadTester() (string, func(), error) {
	lt := loadtester.New(loadtester.Config{AllowedTargets: hostlist.MustParse("in-cluster,127.0.0.0/8")})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listening for the load tester: %w", err)
	}
	srv := &http.Server{Handler: lt, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { lt.Close(); _ = srv.Close() }, nil
}

// startSluice builds the manager and runs it as a process, as it would run
// in a cluster, logging to sluice.log in the demo directory.
func startSluice(ctx context.Context, e *env, root, promURL string) error {
	bin := filepath.Join(e.dir, "sluice")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sluice")
	build.Dir, build.Stdout, build.Stderr = root, os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building sluice: %w", err)
	}
	logf, err := os.Create(filepath.Join(e.dir, "sluice.log"))
	if err != nil {
		return fmt.Errorf("creating sluice.log: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("finding a free port: %w", err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	cmd := exec.Command(bin, "-kubeconfig", e.cluster.KubeconfigPath, "-mesh-provider", "istio",
		"-metrics-server", promURL, "-port", port, "-log-level", "info", "-zap-encoding", "console")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting sluice: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	e.onStop(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(os.Stderr, "sluice stopped with %v (see %s)\n", err, logf.Name())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-done:
			return fmt.Errorf("sluice exited early (see %s): %w", logf.Name(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("sluice did not become ready in 30s (see %s)", logf.Name())
}

func say(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}
