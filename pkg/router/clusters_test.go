package router_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sluicedev/sluice/internal/testenv"
	"github.com/sluicedev/sluice/pkg/router"
)

// istioCRDs reads the VirtualService and DestinationRule CRDs from the
// istio.io/api module and keeps only the given version of each, served
// and stored, as an API server of an Istio release that serves only that
// version would have them.
func istioCRDs(t *testing.T, version string) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		t.Fatalf("locating istio.io/api: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := utilyaml.Unmarshal(doc, crd); err != nil {
			t.Fatal(err)
		}
		if crd.Name != "virtualservices.networking.istio.io" && crd.Name != "destinationrules.networking.istio.io" {
			continue
		}
		crd.Spec.Versions = slices.DeleteFunc(crd.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Name != version })
		if len(crd.Spec.Versions) != 1 {
			t.Fatalf("the CRD %s of istio.io/api has no version %s", crd.Name, version)
		}
		crd.Spec.Versions[0].Served, crd.Spec.Versions[0].Storage = true, true
		crds = append(crds, crd)
	}
	if len(crds) != 2 {
		t.Fatalf("found %d of the two Istio CRDs in istio.io/api", len(crds))
	}
	return crds
}

// startCluster starts another API server with Sluice's CRDs, the router
// CRDs of testdata/crds and Istio's VirtualService and DestinationRule
// served in istioVersion only, and returns a client for it. It is stopped
// when the test ends.
func startCluster(t *testing.T, istioVersion string) client.Client {
	t.Helper()
	e, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stopping the second API server: %v", err)
		}
	})
	if err := router.AddToScheme(e.Scheme); err != nil {
		t.Fatal(err)
	}
	if _, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("testdata", "crds")}, CRDs: istioCRDs(t, istioVersion), ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatal(fmt.Errorf("installing CRDs in the second API server: %w", err))
	}
	c, err := client.New(e.Config, client.Options{Scheme: e.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
