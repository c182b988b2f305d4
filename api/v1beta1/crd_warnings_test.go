package v1beta1_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// TestCRDs_ApplyWithoutWarnings server-side applies each generated CRD as
// a new one and fails on any warning the API server sends, such as
// `unrecognized format "int32"`. The API server warns only about what an
// object newly brings, and the test API server already holds these CRDs,
// so each is applied (dry run) under a group of its own.
func TestCRDs_ApplyWithoutWarnings(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(env.Root, "kustomize", "base", "crd", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in kustomize/base/crd: %v", err)
	}
	log := &warningLog{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = log
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(data, &u.Object); err != nil {
				t.Fatal(err)
			}
			group := "warnings.sluice.test"
			if err := unstructured.SetNestedField(u.Object, group, "spec", "group"); err != nil {
				t.Fatal(err)
			}
			plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
			u.SetName(plural + "." + group)
			log.take()
			_, err = dyn.Resource(gvr).Apply(context.Background(), u.GetName(), u, metav1.ApplyOptions{
				FieldManager: "crd-warnings-test", Force: true, DryRun: []string{metav1.DryRunAll},
			})
			if err != nil {
				t.Fatalf("server-side apply: %v", err)
			}
			for _, w := range log.take() {
				t.Errorf("the API server warned: %s", w)
			}
		})
	}
}
