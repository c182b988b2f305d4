//go:build e2e

// Package takeover proves that Sluice replaces a running Flagger in place,
// on a local control plane of its own whose flagger.app CRDs are first
// Flagger's (from the Flagger module), as Flagger's installation leaves a
// cluster, then Sluice's, applied over them with kubectl as the migration
// guide (docs/migrate-from-flagger.md) says. Flagger v1.44.0 runs as a
// process built from its module (`hack/tool.sh flagger`), beside Sluice
// built from this tree.
package takeover

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluicedev/sluice/e2e/cluster"
	"github.com/sluicedev/sluice/e2e/install"
	"github.com/sluicedev/sluice/internal/testenv"
)

// suite is what TestMain starts once for the package.
var suite struct {
	cluster *cluster.Cluster
	// sluice and flagger are the controllers' binaries; kubectl applies
	// Sluice's CRDs over Flagger's.
	sluice, flagger, kubectl string
	// root is the repository's root directory.
	root string
	// dir holds the control plane's logs, the Sluice binary and the
	// controllers' logs.
	dir string
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(logr.Discard()) // envtest logs through controller-runtime; the steps print what matters
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "sluice-takeover-")
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
			fmt.Fprintln(os.Stderr, "takeover logs kept in", dir)
		}
	}()

	begin := time.Now()
	if err := findTools(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return code
	}
	crd, err := flaggerCRD(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return code
	}
	logs, err := os.Create(filepath.Join(dir, "control-plane.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the control plane log:", err)
		return code
	}
	defer func() { _ = logs.Close() }()
	c, err := cluster.Start(ctx, cluster.Options{
		Nodes: 2, Dir: filepath.Join(dir, "cluster"), Keep: true, Log: logs,
		CanaryCRDs: []string{crd},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		return code
	}
	defer func() { _ = c.Stop() }()
	// The steps read the CRDs to check that kubectl apply updates them.
	if err := apiextensionsv1.AddToScheme(c.Scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return code
	}
	suite.cluster = c
	fmt.Printf("takeover: sluice built and control plane with Flagger's CRDs up in %s\n", time.Since(begin).Round(100*time.Millisecond))

	code = m.Run()
	return code
}

// findTools builds Sluice from this tree and finds the Flagger and kubectl
// binaries that `make tools-e2e` puts in bin/.
func findTools(ctx context.Context) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	suite.root = root
	bin := os.Getenv("KUBEBUILDER_ASSETS")
	if bin == "" {
		bin = filepath.Join(root, "bin")
	}
	suite.flagger, suite.kubectl = filepath.Join(bin, "flagger"), filepath.Join(bin, "kubectl")
	for _, path := range []string{suite.flagger, suite.kubectl} {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s not found: run `make tools-e2e` (or `hack/tool.sh %s`) to build it: %w",
				path, filepath.Base(path), err)
		}
	}
	version, err := flaggerVersion()
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, suite.flagger, "-version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -version (output %q): delete it and run `hack/tool.sh flagger`: %w", suite.flagger, out, err)
	}
	if want := "Flagger version " + strings.TrimPrefix(version, "v"); !strings.Contains(string(out), want) {
		return fmt.Errorf("%s -version = %q, want %q: delete it and run `hack/tool.sh flagger`", suite.flagger, out, want)
	}

	suite.sluice, err = install.BuildSluice(ctx, suite.dir)
	return err
}

// flaggerVersion is FLAGGER_VERSION in hack/tool.sh, the version whose
// binary and CRDs the tests use.
func flaggerVersion() (string, error) {
	data, err := os.ReadFile(filepath.Join(suite.root, "hack", "tool.sh"))
	if err != nil {
		return "", fmt.Errorf("reading the Flagger version: %w", err)
	}
	m := regexp.MustCompile(`(?m)^FLAGGER_VERSION=(v\S+)$`).FindSubmatch(data)
	if m == nil {
		return "", errors.New("hack/tool.sh sets no FLAGGER_VERSION")
	}
	return string(m[1]), nil
}

// flaggerCRD returns the path of Flagger's CRDs (Canary, MetricTemplate,
// AlertProvider) in the Flagger module, downloaded through the module
// proxy into the module cache if it is not there yet.
//
// TODO: use testenv.FlaggerModuleDir once it is merged (branch strict).
func flaggerCRD(ctx context.Context) (string, error) {
	version, err := flaggerVersion()
	if err != nil {
		return "", err
	}
	module := "github.com/fluxcd/flagger@" + version
	// Outside any module, so that Sluice's go.mod and go.sum stay as they are.
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil || info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("locating Flagger's CRDs (go mod download %s): %w: %s %s",
			module, errors.Join(err, errors.New("no module directory")), info.Error, strings.TrimSpace(stderr.String()))
	}
	path := filepath.Join(info.Dir, "artifacts", "flagger", "crd.yaml")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("Flagger's CRDs: %w", err)
	}
	return path, nil
}
