// Package install puts Sluice on an e2e control plane as the end-to-end
// suites run it: the manager built from this tree as a process, under the
// ServiceAccount and RBAC that charts/sluice installs.
//
// This is test-support code, not a stable Go API.
package install

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/sluicedev/sluice/e2e/cluster"
	"github.com/sluicedev/sluice/internal/testenv"
)

// The chart's release: its namespace (which also holds the leader election
// Lease) and ServiceAccount, and the user name Sluice's requests carry.
const (
	Namespace      = "sluice-system"
	ServiceAccount = "sluice"
	User           = "system:serviceaccount:" + Namespace + ":" + ServiceAccount
)

// BuildSluice builds the manager (./cmd/sluice) from this tree into dir
// and returns the binary's path; the compiler's output goes to stderr.
func BuildSluice(ctx context.Context, dir string) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "sluice")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sluice")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building sluice: %w", err)
	}
	return bin, nil
}

// Chart installs charts/sluice with Helm into c, as a user would, but with
// no replica (Sluice runs as a process here: there is no container
// runtime), and returns a kubeconfig holding a token of its ServiceAccount,
// so that a Sluice started with it has exactly the permissions of the
// install.
func Chart(ctx context.Context, c *cluster.Cluster) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	ch, err := loader.Load(filepath.Join(root, "charts", "sluice"))
	if err != nil {
		return "", err
	}
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, ns := c.KubeconfigPath, Namespace
	flags.KubeConfig, flags.Namespace = &kubeconfig, &ns
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		return "", err
	}
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace, inst.CreateNamespace = "sluice", ns, true
	inst.WaitStrategy = kube.HookOnlyStrategy
	if _, err := inst.RunWithContext(ctx, ch, map[string]any{"leaderElection": map[string]any{"replicaCount": 0}}); err != nil {
		return "", fmt.Errorf("helm install charts/sluice: %w", err)
	}
	return c.ServiceAccountKubeconfig(ctx, ns, ServiceAccount)
}
