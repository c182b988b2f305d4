package v1beta1_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluicedev/sluice/internal/crdfields"
)

// TestCRDs_HaveEveryFlaggerField checks the generated CRDs against the list
// of Flagger's field paths in testdata/flagger-fields.txt: every path must
// exist with the same type and enum values, and Sluice must not require a
// field that Flagger leaves optional (that would reject Flagger manifests).
func TestCRDs_HaveEveryFlaggerField(t *testing.T) {
	want := readFieldList(t, filepath.Join("testdata", "flagger-fields.txt"))
	got := generatedFields(t)

	byKey := make(map[string]crdfields.Field, len(got))
	for _, f := range got {
		byKey[f.Key()] = f
	}
	missing := 0
	for _, w := range want {
		g, ok := byKey[w.Key()]
		switch {
		case !ok:
			missing++
			t.Errorf("missing field: %s", w)
		case g.Type != w.Type:
			t.Errorf("%s: type %q, Flagger has %q", w.Key(), g.Type, w.Type)
		case !slices.Equal(g.Enum, w.Enum):
			t.Errorf("%s: enum %v, Flagger has %v", w.Key(), g.Enum, w.Enum)
		case g.Required && !w.Required && stricterOnPurpose[w.Key()] == "":
			t.Errorf("%s: required by Sluice but optional in Flagger", w.Key())
		}
	}
	t.Logf("%d Flagger field paths checked, %d missing, %d paths in Sluice's CRDs", len(want), missing, len(got))
}

// stricterOnPurpose lists the fields Sluice requires although Flagger's
// schema does not, with the reason. No Flagger manifest that works omits them.
var stricterOnPurpose = map[string]string{
	"canaries spec":        "an object without spec has nothing to act on",
	"metrictemplates spec": "an object without spec has nothing to act on",
	"alertproviders spec":  "an object without spec has nothing to act on",
	"canaries spec.service.mirror[].backendRef": "Flagger's schema puts this requirement beside items, where it has no effect; " +
		"a mirror filter without a backend cannot be rendered",
}

func readFieldList(t *testing.T, path string) []crdfields.Field {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fields, err := crdfields.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(fields) < 300 {
		t.Fatalf("%s holds only %d fields; the list looks truncated", path, len(fields))
	}
	return fields
}

func generatedFields(t *testing.T) []crdfields.Field {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "kustomize", "base", "crd", "*.yaml"))
	if err != nil || len(paths) != 3 {
		t.Fatalf("want the 3 generated CRDs in kustomize/base/crd, got %v (%v)", paths, err)
	}
	var fields []crdfields.Field
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := crdfields.FromYAML(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		fields = append(fields, fs...)
	}
	return fields
}

// TestCRDs_PrinterColumnsMatchFlagger checks the columns of `kubectl get`,
// which scripts and people read, against Flagger's.
func TestCRDs_PrinterColumnsMatchFlagger(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"flagger.app_canaries.yaml", []string{
			"Status .status.phase 0", "Weight .status.canaryWeight 0", "Suspended .spec.suspend 1",
			"FailedChecks .status.failedChecks 1", "Interval .spec.analysis.interval 1",
			"Mirror .spec.analysis.mirror 1", "StepWeight .spec.analysis.stepWeight 1",
			"StepWeights .spec.analysis.stepWeights 1", "MaxWeight .spec.analysis.maxWeight 1",
			"LastTransitionTime .status.lastTransitionTime 0",
		}},
		{"flagger.app_metrictemplates.yaml", []string{"Provider .spec.provider.type 0"}},
		{"flagger.app_alertproviders.yaml", []string{"Type .spec.type 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "kustomize", "base", "crd", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.Unmarshal(data, &crd); err != nil {
				t.Fatal(err)
			}
			v := crd.Spec.Versions[0]
			var got []string
			for _, c := range v.AdditionalPrinterColumns {
				got = append(got, fmt.Sprintf("%s %s %d", c.Name, c.JSONPath, c.Priority))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("printer columns:\n got %q\nwant %q", got, tt.want)
			}
			if v.Subresources == nil || v.Subresources.Status == nil {
				t.Error("the status subresource is not enabled")
			}
			if !slices.Contains(crd.Spec.Names.Categories, "all") {
				t.Error(`the kind is not in the "all" category`)
			}
		})
	}
}
