//go:build e2e

// Package scenarios runs Sluice's end-to-end scenarios: one local control
// plane for the package, and for each scenario its own namespace, simulated
// mesh, Prometheus, load tester and Sluice process built from this tree.
package scenarios

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

// suite is what TestMain starts once for every scenario.
var suite struct {
	cluster *cluster.Cluster
	// sluice is the manager binary built from this tree.
	sluice string
	// dir holds the control plane's logs, the binary and one directory
	// per scenario with its Sluice log.
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
	ctrl.SetLogger(logr.Discard()) // meshsim logs through controller-runtime; the scenarios print what matters
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the e2e directory:", err)
		return 1
	}
	suite.dir = dir
	code := 1
	defer func() {
		if code == 0 {
			_ = os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "e2e logs kept in", dir)
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
	c, err := cluster.Start(ctx, cluster.Options{Nodes: 3, Dir: filepath.Join(dir, "cluster"), Keep: true, Log: logs, AuditServiceAccounts: true})
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
	fmt.Printf("e2e: sluice built and control plane up in %s\n", time.Since(begin).Round(100*time.Millisecond))

	code = m.Run()
	// Also after a failure: a forbidden request may be its cause.
	if err := checkRBAC(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	return code
}
