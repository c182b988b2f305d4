package router_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/testenv"
	"github.com/sluicedev/sluice/pkg/router"
)

// env is the API server shared by the tests of this package.
var env *testenv.Env

// update makes the golden tests write testdata instead of comparing.
var update = flag.Bool("update", false, "rewrite the golden files under testdata from the rendered objects")

func TestMain(m *testing.M) {
	flag.Parse()
	e, err := testenv.Start(testenv.Options{Istio: true, GatewayAPI: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// testenv's scheme lacks Gateway API v1beta1 and SMI, which the
	// gatewayapi:v1beta1, linkerd, smi and osm routers write.
	if err := router.AddToScheme(e.Scheme); err != nil {
		fmt.Fprintln(os.Stderr, errors.Join(err, e.Stop()))
		os.Exit(1)
	}
	// testenv installs no SMI CRDs: install the minimal one of testdata.
	if _, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("testdata", "crds")}, ErrorIfPathMissing: true,
	}); err != nil {
		fmt.Fprintln(os.Stderr, errors.Join(fmt.Errorf("installing the CRDs of testdata/crds: %w", err), e.Stop()))
		os.Exit(1)
	}
	env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// podinfo is the Target of the tests' Canaries.
var podinfo = router.Target{SelectorLabel: "app", SelectorValue: "podinfo"}

// testContext returns a context carrying a logger that writes to t.
func testContext(t *testing.T) context.Context {
	return log.IntoContext(t.Context(), testr.NewWithOptions(t, testr.Options{Verbosity: 1}))
}

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "router-"}}
	if err := env.Client.Create(t.Context(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), ns); err != nil {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// newCanary creates the Canary podinfo in ns, after edit changed its spec,
// so that it has the UID that owner references need.
func newCanary(t *testing.T, ns string, edit func(*flaggerv1beta1.CanarySpec)) *flaggerv1beta1.Canary {
	t.Helper()
	cd := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: flaggerv1beta1.CanarySpec{
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   flaggerv1beta1.CanaryService{Port: 9898},
			Analysis:  &flaggerv1beta1.CanaryAnalysis{Interval: "1m", Threshold: 5, Iterations: ptr.To[int32](3)},
		},
	}
	if edit != nil {
		edit(&cd.Spec)
	}
	if err := env.Client.Create(t.Context(), cd); err != nil {
		t.Fatalf("creating Canary: %v", err)
	}
	return cd
}

// countingClient returns a client of the test API server that counts its
// writes (create, update, patch, delete).
func countingClient(t *testing.T) (client.Client, *atomic.Int32) {
	t.Helper()
	base, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatalf("creating client: %v", err)
	}
	var writes atomic.Int32
	c := interceptor.NewClient(base, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			writes.Add(1)
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			writes.Add(1)
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			writes.Add(1)
			return c.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			writes.Add(1)
			return c.Delete(ctx, obj, opts...)
		},
	})
	return c, &writes
}

// getService reads a Service or fails the test.
func getService(t *testing.T, ns, name string) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{}
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		t.Fatalf("reading Service %s/%s: %v", ns, name, err)
	}
	return svc
}

// ensureServices runs EnsureServices with the shared client or fails the test.
func ensureServices(t *testing.T, cd *flaggerv1beta1.Canary, tg router.Target) {
	t.Helper()
	if err := router.EnsureServices(testContext(t), env.Client, cd, tg); err != nil {
		t.Fatalf("EnsureServices: %v", err)
	}
}

// patchAs applies a merge patch to obj as another field manager, the way a
// person or another controller would.
func patchAs(t *testing.T, obj client.Object, patch string) {
	t.Helper()
	if err := env.Client.Patch(t.Context(), obj, client.RawPatch("application/merge-patch+json", []byte(patch)), client.FieldOwner("someone-else")); err != nil {
		t.Fatalf("patching %s: %v", obj.GetName(), err)
	}
}

// cmpDiff returns "" when want and got are semantically equal (a nil and
// an empty map or slice are equal), else a diff of their JSON.
func cmpDiff(want, got any) string {
	if equality.Semantic.DeepEqual(want, got) {
		return ""
	}
	if d := diff.Diff(want, got); d != "" {
		return d
	}
	return fmt.Sprintf("want %#v\ngot  %#v", want, got)
}

// objectKey is client.ObjectKeyFromObject, shorter.
func objectKey(obj client.Object) client.ObjectKey {
	return client.ObjectKeyFromObject(obj)
}

// specYAML renders a spec as YAML with sorted keys, the golden files'
// format. Istio's specs go through their own JSON marshaller.
func specYAML(t *testing.T, spec any) []byte {
	t.Helper()
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatalf("marshalling %T: %v", spec, err)
	}
	out, err := yaml.JSONToYAML(data)
	if err != nil {
		t.Fatalf("converting %T to YAML: %v", spec, err)
	}
	return out
}

// assertGolden compares got with the file testdata/<name>, or writes it
// there when the tests run with -update.
func assertGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (go test -update writes it): %v", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (go test -update rewrites it if the change is intended):\n%s", path, diff.Diff(string(want), string(got)))
	}
}
