// Package kustomize_test renders the install manifests in this directory with
// kustomize's Go API and checks what every provider overlay produces. It holds
// no code of its own: the manifests are the product.
package kustomize_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
	namespace = "sluice-system"
	name      = "sluice"
)

// overlays is one row per provider directory. TestOverlays_MatchDirectories
// fails when a directory has no row here.
var overlays = []struct {
	dir           string
	meshProvider  string
	metricsServer string
}{
	{dir: "istio", meshProvider: "istio", metricsServer: "http://prometheus.istio-system:9090"},
	{dir: "gatewayapi", meshProvider: "gatewayapi:v1", metricsServer: "http://prometheus.monitoring:9090"},
	{dir: "nginx", meshProvider: "nginx", metricsServer: "http://prometheus.monitoring:9090"},
	{dir: "linkerd", meshProvider: "linkerd", metricsServer: "http://prometheus.linkerd-viz:9090"},
	{dir: "contour", meshProvider: "contour", metricsServer: "http://prometheus.monitoring:9090"},
	{dir: "traefik", meshProvider: "traefik", metricsServer: "http://prometheus.monitoring:9090"},
	{dir: "kubernetes", meshProvider: "kubernetes", metricsServer: "http://prometheus.monitoring:9090"},
}

var wantCRDs = []string{
	"alertproviders.flagger.app",
	"canaries.flagger.app",
	"metrictemplates.flagger.app",
}

func TestOverlays_MatchDirectories(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "base" || e.Name() == "tester" {
			continue
		}
		if _, err := os.Stat(filepath.Join(e.Name(), "kustomization.yaml")); err == nil {
			onDisk = append(onDisk, e.Name())
		}
	}
	var inTable []string
	for _, o := range overlays {
		inTable = append(inTable, o.dir)
	}
	slices.Sort(onDisk)
	slices.Sort(inTable)
	if !slices.Equal(onDisk, inTable) {
		t.Errorf("overlay directories %v differ from the test table %v: add a row for each new overlay", onDisk, inTable)
	}
}

func TestOverlays_RenderInstallableManager(t *testing.T) {
	for _, o := range overlays {
		t.Run(o.dir, func(t *testing.T) {
			t.Parallel()
			objs := render(t, o.dir)

			var crds []string
			for key := range objs {
				if key.kind == "CustomResourceDefinition" {
					crds = append(crds, key.name)
				}
			}
			slices.Sort(crds)
			if !slices.Equal(crds, wantCRDs) {
				t.Errorf("CRDs = %v, want %v", crds, wantCRDs)
			}

			var role rbacv1.ClusterRole
			decode(t, objs, objKey{kind: "ClusterRole", name: name}, &role)
			if len(role.Rules) == 0 {
				t.Error("ClusterRole sluice has no rules")
			}

			var binding rbacv1.ClusterRoleBinding
			decode(t, objs, objKey{kind: "ClusterRoleBinding", name: name}, &binding)
			wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: name, Namespace: namespace}
			if binding.RoleRef.Kind != "ClusterRole" || binding.RoleRef.Name != name {
				t.Errorf("ClusterRoleBinding roleRef = %+v, want ClusterRole %s", binding.RoleRef, name)
			}
			if !slices.Equal(binding.Subjects, []rbacv1.Subject{wantSubject}) {
				t.Errorf("ClusterRoleBinding subjects = %+v, want [%+v]", binding.Subjects, wantSubject)
			}

			var sa corev1.ServiceAccount
			decode(t, objs, objKey{kind: "ServiceAccount", namespace: namespace, name: name}, &sa)
			var ns corev1.Namespace
			decode(t, objs, objKey{kind: "Namespace", name: namespace}, &ns)

			var deploy appsv1.Deployment
			decode(t, objs, objKey{kind: "Deployment", namespace: namespace, name: name}, &deploy)
			checkDeployment(t, &deploy, "-mesh-provider="+o.meshProvider, "-metrics-server="+o.metricsServer)
		})
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, wantMesh, wantMetrics string) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != name {
		t.Errorf("serviceAccountName = %q, want %q", pod.ServiceAccountName, name)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	if got := countPrefix(c.Args, "-mesh-provider="); got != 1 {
		t.Errorf("args %v have %d -mesh-provider flags, want 1", c.Args, got)
	}
	if !slices.Contains(c.Args, wantMesh) {
		t.Errorf("args %v lack %s", c.Args, wantMesh)
	}
	if got := countPrefix(c.Args, "-metrics-server="); got != 1 {
		t.Errorf("args %v have %d -metrics-server flags, want 1", c.Args, got)
	}
	if !slices.Contains(c.Args, wantMetrics) {
		t.Errorf("args %v lack %s", c.Args, wantMetrics)
	}
	if !slices.Contains(c.Args, "-leader-election-namespace="+namespace) {
		t.Errorf("args %v lack -leader-election-namespace=%s", c.Args, namespace)
	}

	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports = %+v, want one port http 8080", c.Ports)
	}
	checkProbe(t, "liveness", c.LivenessProbe, "/healthz")
	checkProbe(t, "readiness", c.ReadinessProbe, "/readyz")
}

func checkProbe(t *testing.T, which string, p *corev1.Probe, wantPath string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe is not an HTTP GET", which)
		return
	}
	if p.HTTPGet.Path != wantPath || p.HTTPGet.Port.String() != "http" {
		t.Errorf("%s probe = GET %s on port %s, want GET %s on port http", which, p.HTTPGet.Path, p.HTTPGet.Port.String(), wantPath)
	}
}

func countPrefix(args []string, prefix string) int {
	n := 0
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			n++
		}
	}
	return n
}

type objKey struct {
	kind, namespace, name string
}

// render builds the kustomization in dir and returns its objects as YAML.
func render(t *testing.T, dir string) map[objKey][]byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("rendering %s: %v", dir, err)
	}
	objs := map[objKey][]byte{}
	for _, r := range resMap.Resources() {
		key := objKey{kind: r.GetKind(), namespace: r.GetNamespace(), name: r.GetName()}
		if _, dup := objs[key]; dup {
			t.Errorf("%s renders %+v twice", dir, key)
		}
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("encoding %+v: %v", key, err)
		}
		objs[key] = y
	}
	return objs
}

func decode(t *testing.T, objs map[objKey][]byte, key objKey, into any) {
	t.Helper()
	y, ok := objs[key]
	if !ok {
		t.Fatalf("no %s %q in namespace %q", key.kind, key.name, key.namespace)
	}
	if err := yaml.UnmarshalStrict(y, into); err != nil {
		t.Fatalf("decoding %s %s: %v", key.kind, key.name, err)
	}
}

// TestTester_RendersTheLoadTesterUnderFlaggersName checks the load tester
// install: Flagger's Service name and port, so existing webhook URLs work.
func TestTester_RendersTheLoadTesterUnderFlaggersName(t *testing.T) {
	objs := render(t, "tester")
	for _, k := range []objKey{{kind: "Deployment", name: "flagger-loadtester"}, {kind: "Service", name: "flagger-loadtester"}} {
		if _, ok := objs[k]; !ok {
			t.Errorf("tester does not render %+v; got %v", k, keys(objs))
		}
	}
	svc := string(objs[objKey{kind: "Service", name: "flagger-loadtester"}])
	if !strings.Contains(svc, "port: 80") || !strings.Contains(svc, "targetPort: http") {
		t.Errorf("the Service does not serve port 80:\n%s", svc)
	}
	dep := string(objs[objKey{kind: "Deployment", name: "flagger-loadtester"}])
	if !strings.Contains(dep, "runAsNonRoot: true") || !strings.Contains(dep, "path: /healthz") {
		t.Errorf("the Deployment lacks the non-root context or the probes:\n%s", dep)
	}
	for _, want := range []string{"automountServiceAccountToken: false", "-allowed-targets=in-cluster", "-max-jobs=20", "-max-load-rate=1000"} {
		if !strings.Contains(dep, want) {
			t.Errorf("the Deployment lacks %s:\n%s", want, dep)
		}
	}
}

func keys(m map[objKey][]byte) []objKey {
	out := make([]objKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRBAC_GrantsSecretsByNameAndLeasesInItsNamespaceOnly: the manager
// never lists or watches every Secret of the cluster (it reads the ones a
// Canary names), and its leader-election Lease is granted in its own
// namespace, not cluster-wide (cluster-wide it may only read Flagger's
// Lease, by name).
func TestRBAC_GrantsSecretsByNameAndLeasesInItsNamespaceOnly(t *testing.T) {
	objs := render(t, "base")
	var cr rbacv1.ClusterRole
	decode(t, objs, objKey{kind: "ClusterRole", name: name}, &cr)
	for _, rule := range cr.Rules {
		for _, res := range rule.Resources {
			switch res {
			case "secrets":
				if slices.Contains(rule.Verbs, "list") || slices.Contains(rule.Verbs, "watch") {
					t.Errorf("the ClusterRole lets the manager %v every Secret", rule.Verbs)
				}
			case "leases":
				// Only Flagger's own Lease, read by name to tell whether
				// Flagger runs.
				if !slices.Equal(rule.ResourceNames, []string{"flagger-leader-election"}) || !slices.Equal(rule.Verbs, []string{"get"}) {
					t.Errorf("the ClusterRole grants Leases cluster-wide: %v on %v", rule.Verbs, rule.ResourceNames)
				}
			}
		}
	}
	var role rbacv1.Role
	decode(t, objs, objKey{kind: "Role", namespace: namespace, name: name}, &role)
	if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].Resources, []string{"leases"}) {
		t.Errorf("the Role grants %+v, want only the leader-election Leases", role.Rules)
	}
	var rb rbacv1.RoleBinding
	decode(t, objs, objKey{kind: "RoleBinding", namespace: namespace, name: name}, &rb)
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != name {
		t.Errorf("RoleBinding = %+v, want the Role bound to the manager's ServiceAccount", rb)
	}
}
