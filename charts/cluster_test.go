package charts_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/sluicedev/sluice/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	if err := prepareCluster(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// prepareCluster creates the namespaces the cases render into and
// permissive stand-ins for the third-party CRDs that optional templates use
// (Prometheus Operator, Linkerd policy), so the dry run reaches them. Their
// schemas are not the real ones: the dry run checks group, version, kind
// and scope there.
func prepareCluster(ctx context.Context) error {
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		return err
	}
	for _, ns := range []string{"sluice-system", "apps", "monitoring", "linkerd-viz", "test", "flagger-system"} {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns},
		}}
		if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	crd := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, c := range []struct{ group, version, kind, plural string }{
		{"monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors"},
		{"monitoring.coreos.com", "v1", "PodMonitor", "podmonitors"},
		{"policy.linkerd.io", "v1alpha1", "AuthorizationPolicy", "authorizationpolicies"},
	} {
		obj := &unstructured.Unstructured{}
		doc := fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[4]s.%[1]s}
spec:
  group: %[1]s
  scope: Namespaced
  names: {kind: %[3]s, plural: %[4]s}
  versions:
  - name: %[2]s
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, c.group, c.version, c.kind, c.plural)
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			return err
		}
		if _, err := dyn.Resource(crd).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating the stand-in CRD for %s: %w", c.kind, err)
		}
		if err := waitServed(ctx, c.group+"/"+c.version, c.plural); err != nil {
			return err
		}
	}
	return nil
}

// waitServed waits until discovery lists resource in groupVersion: a new
// CRD is served a moment after it is created.
func waitServed(ctx context.Context, groupVersion, resource string) error {
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if list, err := dc.ServerResourcesForGroupVersion(groupVersion); err == nil {
			for _, r := range list.APIResources {
				if r.Name == resource {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s of %s is not served: %w", resource, groupVersion, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// warnings collects the API server's warnings.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// dryRunner applies objects with a server-side apply dry run (dryRun=All),
// as `helm template | kubectl apply --server-side --dry-run=server` does.
type dryRunner struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	warn   *warnings
}

func newDryRunner(t *testing.T) *dryRunner {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	w := &warnings{}
	cfg.WarningHandlerWithContext = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &dryRunner{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), warn: w}
}

func (d *dryRunner) apply(ctx context.Context, obj *unstructured.Unstructured, defaultNS string) error {
	gvk := obj.GroupVersionKind()
	m, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk, obj.GetName(), err)
	}
	var ri dynamic.ResourceInterface = d.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = defaultNS
		}
		ri = d.dyn.Resource(m.Resource).Namespace(ns)
	}
	_, err = ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "charts-test", Force: true, DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// TestCRDs_CreateWithoutWarnings creates each CRD in a dry run under a
// group of its own (a CRD that exists only warns about what an update
// adds) and fails on any warning, such as `unrecognized format "int32"`.
// A copy with a format the API server does not know shows that warnings
// are seen at all.
func TestCRDs_CreateWithoutWarnings(t *testing.T) {
	d := newDryRunner(t)
	files, _ := filepath.Glob("sluice/crds/*.yaml")
	if len(files) != 3 {
		t.Fatalf("sluice/crds holds %d files, want 3", len(files))
	}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	create := func(obj *unstructured.Unstructured) []string {
		t.Helper()
		if _, err := d.dyn.Resource(crds).Create(t.Context(), obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Fatalf("dry-run create of %s: %v", obj.GetName(), err)
		}
		return d.warn.take()
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &obj.Object); err != nil {
			t.Fatal(err)
		}
		plural, _, _ := unstructured.NestedString(obj.Object, "spec", "names", "plural")
		_ = unstructured.SetNestedField(obj.Object, "warnings.sluice.test", "spec", "group")
		obj.SetName(plural + ".warnings.sluice.test")
		if w := create(obj); len(w) > 0 {
			t.Errorf("creating %s warns: %q", filepath.Base(f), w)
		}

		if plural == "canaries" {
			bad := obj.DeepCopy()
			vs, _, _ := unstructured.NestedSlice(bad.Object, "spec", "versions")
			props, _, _ := unstructured.NestedMap(vs[0].(map[string]any), "schema", "openAPIV3Schema", "properties")
			props["probe"] = map[string]any{"type": "string", "format": "url"}
			_ = unstructured.SetNestedMap(vs[0].(map[string]any), props, "schema", "openAPIV3Schema", "properties")
			_ = unstructured.SetNestedSlice(bad.Object, vs, "spec", "versions")
			if w := create(bad); len(w) == 0 || !strings.Contains(strings.Join(w, " "), `unrecognized format "url"`) {
				t.Errorf("a CRD with format url gave warnings %q, want the unrecognized format warning: the check sees nothing", w)
			}
		}
	}
}

// knownFlags reads the manager's flags from the README's generated table.
func knownFlags(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `-([a-z0-9-]+)` \\|").FindAllStringSubmatch(string(data), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 20 {
		t.Fatalf("found %d flags in the README's table", len(flags))
	}
	return flags
}

// helmConfig is a Helm action configuration for the test API server.
func helmConfig(t *testing.T, namespace string) *action.Configuration {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.Kubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	flags.Namespace = &namespace
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, namespace, "secret"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCharts_InstallAndUninstall installs both charts into the test API
// server with Helm, checks what landed, and uninstalls them.
func TestCharts_InstallAndUninstall(t *testing.T) {
	ctx := t.Context()
	for _, c := range []struct {
		chart, release, namespace, deployment string
		vals                                  string
	}{
		{sluiceChart, "sluice", "sluice-system", "sluice", "podDisruptionBudget: {enabled: true}\nleaderElection: {enabled: true, replicaCount: 2}"},
		{loadtesterChart, "flagger-loadtester", "test", "flagger-loadtester", ""},
	} {
		cfg := helmConfig(t, c.namespace)
		inst := action.NewInstall(cfg)
		inst.ReleaseName, inst.Namespace = c.release, c.namespace
		inst.WaitStrategy = kube.HookOnlyStrategy
		if _, err := inst.RunWithContext(ctx, loadChart(t, c.chart), values(t, c.vals)); err != nil {
			t.Fatalf("helm install %s: %v", c.chart, err)
		}
		dyn := dynamic.NewForConfigOrDie(env.Config)
		deploy := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
		if _, err := dyn.Resource(deploy).Namespace(c.namespace).Get(ctx, c.deployment, metav1.GetOptions{}); err != nil {
			t.Errorf("after helm install %s: %v", c.chart, err)
		}
		if c.chart == sluiceChart {
			checkInstalledRole(t, dyn)
		}
		un := action.NewUninstall(cfg)
		un.WaitStrategy = kube.HookOnlyStrategy
		if _, err := un.Run(c.release); err != nil {
			t.Fatalf("helm uninstall %s: %v", c.release, err)
		}
		if _, err := dyn.Resource(deploy).Namespace(c.namespace).Get(ctx, c.deployment, metav1.GetOptions{}); err == nil {
			t.Errorf("Deployment %s is still there after helm uninstall", c.deployment)
		}
	}
}

// checkInstalledRole compares the installed ClusterRole's rules with the
// generated ones.
func checkInstalledRole(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	got, err := dyn.Resource(schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}).
		Get(t.Context(), "sluice", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the installed ClusterRole: %v", err)
	}
	data, err := os.ReadFile("../kustomize/base/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := parseObjects(string(data))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	for _, d := range docs {
		if d.GetKind() == "ClusterRole" {
			want = d.Object
		}
	}
	a, _ := yaml.Marshal(got.Object["rules"])
	b, _ := yaml.Marshal(want["rules"])
	if string(a) != string(b) {
		t.Errorf("installed ClusterRole rules differ from kustomize/base/rbac/role.yaml:\n%s\nwant\n%s", a, b)
	}
}
