// Package charts_test checks the Helm charts in this directory with Helm's
// own Go library (helm.sh/helm/v4): lint, render with each combination of
// values that changes what is rendered, a server-side dry run of every
// rendered object against a real kube-apiserver (envtest), and a real
// install and uninstall there. The charts are the product; this package
// holds no code of its own.
package charts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	sluiceChart     = "sluice"
	loadtesterChart = "loadtester"
)

// loadChart loads a chart directory with Helm's loader.
func loadChart(t *testing.T, dir string) *chartv2.Chart {
	t.Helper()
	ch, err := loader.Load(dir)
	if err != nil {
		t.Fatalf("loading chart %s: %v", dir, err)
	}
	return ch
}

// values parses a YAML values document.
func values(t *testing.T, doc string) map[string]any {
	t.Helper()
	v := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("values %q: %v", doc, err)
	}
	return v
}

// render runs `helm template` through the library: a client-only install.
func render(ctx context.Context, dir, release, namespace string, vals map[string]any) ([]*unstructured.Unstructured, error) {
	ch, err := loader.Load(dir)
	if err != nil {
		return nil, err
	}
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.Replace = true
	inst.ReleaseName = release
	inst.Namespace = namespace
	// The version of the test API server (hack/tool.sh), not Helm's default.
	if inst.KubeVersion, err = common.ParseKubeVersion("v1.37.2"); err != nil {
		return nil, err
	}
	rel, err := inst.RunWithContext(ctx, ch, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("unexpected release type %T", rel)
	}
	return parseObjects(r.Manifest)
}

// parseObjects splits a multi-document manifest into objects.
func parseObjects(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// kinds lists "Kind/name" of objs.
func kinds(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		out[o.GetKind()+"/"+o.GetName()] = o
	}
	return out
}

// containerArgs returns the args of the first container of the Deployment
// named name.
func containerArgs(t *testing.T, objs []*unstructured.Unstructured, name string) []string {
	t.Helper()
	d := kinds(objs)["Deployment/"+name]
	if d == nil {
		t.Fatalf("no Deployment %s in %v", name, keys(kinds(objs)))
	}
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		t.Fatalf("Deployment %s has no container", name)
	}
	args, _, _ := unstructured.NestedStringSlice(cs[0].(map[string]any), "args")
	return args
}

func keys(m map[string]*unstructured.Unstructured) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCharts_Lint(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{sluiceChart, loadtesterChart} {
		lint := action.NewLint()
		lint.Strict = true
		lint.Namespace = "sluice-system"
		res := lint.Run([]string{dir}, map[string]any{})
		if res.TotalChartsLinted != 1 {
			t.Errorf("%s: linted %d charts, want 1: %v", dir, res.TotalChartsLinted, res.Errors)
		}
		for _, m := range res.Messages {
			t.Logf("%s: %s", dir, m)
		}
		if len(res.Errors) > 0 {
			t.Errorf("helm lint --strict %s: %v", dir, res.Errors)
		}
	}
}

// TestSluiceChart_FilesAreTheGeneratedOnes checks the chart's copies of
// generated files: the CRDs, the RBAC rules and the dashboards are the
// same bytes as in kustomize/ (make manifests copies them).
func TestSluiceChart_FilesAreTheGeneratedOnes(t *testing.T) {
	t.Parallel()
	pairs := map[string]string{
		"../kustomize/base/rbac/role.yaml":          "sluice/files/role.yaml",
		"../kustomize/base/admission-warnings.yaml": "sluice/files/admission-warnings.yaml",
	}
	for _, glob := range []struct{ src, dst string }{
		{"../kustomize/base/crd/*.yaml", "sluice/crds"},
		{"../kustomize/grafana/*.json", "sluice/files/dashboards"},
	} {
		srcs, _ := filepath.Glob(glob.src)
		dsts, _ := filepath.Glob(filepath.Join(glob.dst, "*"))
		if len(srcs) == 0 || len(srcs) != len(dsts) {
			t.Errorf("%s holds %d files, %s %d: run make manifests", glob.dst, len(dsts), glob.src, len(srcs))
		}
		for _, s := range srcs {
			pairs[s] = filepath.Join(glob.dst, filepath.Base(s))
		}
	}
	for src, dst := range pairs {
		a, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s (%v): run make manifests", dst, src, err)
		}
	}
}

// TestSluiceChart_RendersFlaggerValues renders the chart with the values
// file of Flagger's chart: a Flagger user's values must work.
func TestSluiceChart_RendersFlaggerValues(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/flagger-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := render(t.Context(), sluiceChart, "flagger", "flagger-system", values(t, string(data)))
	if err != nil {
		t.Fatalf("rendering Sluice's chart with Flagger's values: %v", err)
	}
	args := containerArgs(t, objs, "flagger-sluice")
	for _, want := range []string{"-metrics-server=http://prometheus:9090", "-slack-user=flagger", "-enable-config-tracking=true"} {
		if !contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
