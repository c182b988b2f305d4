//go:build e2e

// Package chaos runs Sluice's fault-injection campaign: many rollouts of
// healthy and faulty revisions through several Canaries at once, on the
// local control plane with the simulated mesh and a real Prometheus, while
// Sluice, its leader, the API server, Prometheus and a webhook server are
// killed, restarted or made to misbehave at seeded moments. Afterwards the
// guarantees of the README's Reliability section are checked against what
// the cluster recorded. `make chaos SEED=… ROLLOUTS=…` runs the campaign;
// `make e2e` runs a short smoke version.
package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluicedev/sluice/e2e/cluster"
	"github.com/sluicedev/sluice/e2e/install"
)

var (
	flagCampaign = flag.Bool("chaos.campaign", false, "run the full campaign (make chaos); without it only the smoke test runs")
	flagSeed     = flag.Int64("chaos.seed", 0, "seed of the campaign's choices; 0 picks one from the clock and prints it")
	flagRollouts = flag.Int("chaos.rollouts", 100, "rollouts in the full campaign")
	flagLanes    = flag.Int("chaos.lanes", 0, "Canaries released in parallel; 0 sizes it from the rollouts")
)

// suite is what TestMain starts once.
var suite struct {
	cluster *cluster.Cluster
	// sluice is the manager binary built from this tree.
	sluice string
	// dir holds the control plane's logs, the binary and the campaign's
	// logs (Sluice, Prometheus).
	dir string
	// kubeconfig holds a token of the ServiceAccount the chart installs:
	// Sluice runs with it, not as cluster admin.
	kubeconfig string
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(logr.Discard()) // meshsim logs through controller-runtime; the campaign prints what matters
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "sluice-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the chaos directory:", err)
		return 1
	}
	suite.dir = dir
	code := 1
	defer func() {
		if code == 0 {
			_ = os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "chaos logs kept in", dir)
		}
	}()

	begin := time.Now()
	if suite.sluice, err = install.BuildSluice(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return code
	}
	logs, err := os.Create(filepath.Join(dir, "control-plane.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the control plane log:", err)
		return code
	}
	defer func() { _ = logs.Close() }()
	c, err := cluster.Start(ctx, cluster.Options{Nodes: 3, Dir: filepath.Join(dir, "cluster"), Keep: true, Log: logs})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		return code
	}
	defer func() { _ = c.Stop() }()
	suite.cluster = c
	if suite.kubeconfig, err = install.Chart(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "installing Sluice's chart:", err)
		return code
	}
	fmt.Printf("chaos: sluice built and control plane up in %s\n", time.Since(begin).Round(100*time.Millisecond))

	code = m.Run()
	return code
}
