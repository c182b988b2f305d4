// Package testenv starts a real kube-apiserver and etcd (controller-runtime
// envtest) with Sluice's CRDs and, on request, the Istio and Gateway API CRDs
// taken from the Go modules that ship them. On request it installs
// Flagger's own CRDs instead of Sluice's, so that a test can ask what
// Flagger's schema accepts (see FlaggerModuleDir).
//
// The binaries come from KUBEBUILDER_ASSETS or, when that is unset, from the
// repository's bin/ directory, which `make tools` fills. Nothing is
// downloaded.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Options choose which third-party CRDs are installed besides Sluice's own.
type Options struct {
	// Istio installs the CRDs of istio.io/api (VirtualService,
	// DestinationRule, ...).
	Istio bool
	// GatewayAPI installs the standard-channel CRDs of
	// sigs.k8s.io/gateway-api (HTTPRoute, Gateway, ...).
	GatewayAPI bool
	// FlaggerCRDs installs Flagger's CRDs (artifacts/flagger/crd.yaml of
	// github.com/fluxcd/flagger at FlaggerVersion) instead of Sluice's. Both
	// define the same flagger.app kinds, so one API server serves one set.
	FlaggerCRDs bool
	// APIServerFlags are extra kube-apiserver flags, without the leading
	// dashes (for example "audit-policy-file"), set on top of envtest's.
	APIServerFlags map[string]string
}

// Env is a running API server and a client for it.
type Env struct {
	// Environment is the underlying envtest environment.
	Environment *envtest.Environment
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client is a client for Config with Scheme.
	Client client.Client
	// Scheme knows the built-in kinds, Sluice's kinds and the installed
	// third-party kinds.
	Scheme *runtime.Scheme
	// Root is the repository's root directory.
	Root string
}

// NewScheme returns a scheme with the built-in kinds, Sluice's kinds and the
// Istio and Gateway API kinds.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		flaggerv1beta1.AddToScheme,
		networkingv1.AddToScheme,
		gatewayv1.Install,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building scheme: %w", err)
		}
	}
	return s, nil
}

// Start starts etcd and kube-apiserver and installs the CRDs. Call Stop when
// done, usually from TestMain.
func Start(opts Options) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin")
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run `make tools` (or `make test`, which builds it): %w", bin, assets, err)
		}
	}

	paths := []string{filepath.Join(root, "kustomize", "base", "crd")}
	if opts.FlaggerCRDs {
		dir, err := FlaggerModuleDir()
		if err != nil {
			return nil, err
		}
		paths = []string{filepath.Join(dir, "artifacts", "flagger", "crd.yaml")}
	}
	if opts.Istio {
		dir, err := moduleDir(root, "istio.io/api")
		if err != nil {
			return nil, err
		}
		paths = append(paths, filepath.Join(dir, "kubernetes", "customresourcedefinitions.gen.yaml"))
	}
	if opts.GatewayAPI {
		dir, err := moduleDir(root, "sigs.k8s.io/gateway-api")
		if err != nil {
			return nil, err
		}
		paths = append(paths, filepath.Join(dir, "config", "crd", "standard"))
	}

	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	te := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              paths,
			ErrorIfPathMissing: true,
			Scheme:             scheme,
		},
	}
	for name, value := range opts.APIServerFlags {
		te.ControlPlane.GetAPIServer().Configure().Set(name, value)
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("creating client: %w", err), te.Stop())
	}
	return &Env{Environment: te, Config: cfg, Client: c, Scheme: scheme, Root: root}, nil
}

// Stop stops the API server and etcd and removes their data.
func (e *Env) Stop() error {
	if e == nil || e.Environment == nil {
		return nil
	}
	return e.Environment.Stop()
}

// Kubeconfig writes a kubeconfig for a cluster-admin user of the running
// API server to path, for programs started by a test.
func (e *Env) Kubeconfig(path string) error {
	user, err := e.Environment.AddUser(envtest.User{Name: "sluice-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// RepoRoot returns the directory of Sluice's go.mod, found by walking up from
// the working directory (go test runs in the package's directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the working directory: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/sluicedev/sluice\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the Sluice repository root (go.mod of github.com/sluicedev/sluice) is not above the working directory")
		}
		dir = parent
	}
}

// moduleDir returns where the Go module cache holds module, at the version
// Sluice's go.mod requires.
func moduleDir(root, module string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("locating module %s: %w: %s", module, err, ee.Stderr)
		}
		return "", fmt.Errorf("locating module %s: %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("module %s is not downloaded: run `go mod download %s`", module, module)
	}
	return dir, nil
}
