//go:build e2e

package chaos

import (
	"context"
	"fmt"
	"path/filepath"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/sluicedev/sluice/internal/testenv"
)

// Sluice runs under the ServiceAccount the chart installs, in its
// namespace, which also holds the leader election Lease.
const (
	sluiceNamespace      = "sluice-system"
	sluiceServiceAccount = "sluice"
)

// installSluice installs charts/sluice with Helm, as e2e/scenarios does:
// with no replica (Sluice runs as processes here), and returns a
// kubeconfig holding a token of its ServiceAccount, so that every Sluice
// of the campaign has exactly the permissions of the install.
func installSluice(ctx context.Context) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	ch, err := loader.Load(filepath.Join(root, "charts", "sluice"))
	if err != nil {
		return "", err
	}
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, ns := suite.cluster.KubeconfigPath, sluiceNamespace
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
	return suite.cluster.ServiceAccountKubeconfig(ctx, ns, sluiceServiceAccount)
}
