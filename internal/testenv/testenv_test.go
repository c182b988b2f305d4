package testenv_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluicedev/sluice/internal/testenv"
)

// TestStart_InstallsSluiceAndThirdPartyCRDs checks that the environment the
// other suites rely on serves the CRDs it promises.
func TestStart_InstallsSluiceAndThirdPartyCRDs(t *testing.T) {
	env, err := testenv.Start(testenv.Options{Istio: true, GatewayAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := apiextensionsv1.AddToScheme(env.Scheme); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"canaries.flagger.app",
		"metrictemplates.flagger.app",
		"alertproviders.flagger.app",
		"virtualservices.networking.istio.io",
		"destinationrules.networking.istio.io",
		"httproutes.gateway.networking.k8s.io",
		"gateways.gateway.networking.k8s.io",
	} {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(context.Background(), types.NamespacedName{Name: name}, crd); err != nil {
			t.Errorf("CRD %s: %v", name, err)
			continue
		}
		established := false
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			t.Errorf("CRD %s is not established: %+v", name, crd.Status.Conditions)
		}
	}
	var _ runtime.Object = &apiextensionsv1.CustomResourceDefinition{}
}

// TestStart_FlaggerCRDsReplaceSluices checks that FlaggerCRDs serves
// Flagger's own schema, not Sluice's: Flagger's Canary CRD carries no CEL
// rules and keeps Helm's resource policy annotation.
func TestStart_FlaggerCRDsReplaceSluices(t *testing.T) {
	env, err := testenv.Start(testenv.Options{FlaggerCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := apiextensionsv1.AddToScheme(env.Scheme); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"canaries.flagger.app", "metrictemplates.flagger.app", "alertproviders.flagger.app"} {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(context.Background(), types.NamespacedName{Name: name}, crd); err != nil {
			t.Fatalf("CRD %s: %v", name, err)
		}
		if crd.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s is not Flagger's: annotations %v", name, crd.Annotations)
		}
	}
}

// TestInstallDeps_DownloadsFlaggersVersion keeps hack/install-deps.sh,
// which fills CI's module cache, on the version the tests use.
func TestInstallDeps_DownloadsFlaggersVersion(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "hack", "install-deps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	want := testenv.FlaggerModule + "@" + testenv.FlaggerVersion
	if !strings.Contains(string(data), want) {
		t.Errorf("hack/install-deps.sh does not download %s", want)
	}
	dir, err := testenv.FlaggerModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "artifacts", "flagger", "crd.yaml")); err != nil {
		t.Errorf("Flagger's module has no CRD file: %v", err)
	}
}

// TestStart_CanaryCRDsReplaceSluices checks that CanaryCRDs installs the
// given flagger.app CRDs instead of Sluice's: here only the AlertProvider
// CRD, so the Canary kind is not served.
func TestStart_CanaryCRDsReplaceSluices(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	only := filepath.Join(root, "kustomize", "base", "crd", "flagger.app_alertproviders.yaml")
	env, err := testenv.Start(testenv.Options{CanaryCRDs: []string{only}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := apiextensionsv1.AddToScheme(env.Scheme); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: "alertproviders.flagger.app"}, crd); err != nil {
		t.Errorf("CRD alertproviders.flagger.app from CanaryCRDs: %v", err)
	}
	err = env.Client.Get(ctx, types.NamespacedName{Name: "canaries.flagger.app"}, crd)
	if !apierrors.IsNotFound(err) {
		t.Errorf("CRD canaries.flagger.app: got %v, want not found: Sluice's CRDs were installed besides CanaryCRDs", err)
	}
}
