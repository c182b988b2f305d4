package router_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	appmeshv1beta1 "github.com/sluicedev/sluice/pkg/apis/appmesh/v1beta1"
	appmeshv1beta2 "github.com/sluicedev/sluice/pkg/apis/appmesh/v1beta2"
	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/router"
)

// appMeshService sets the Service fields the App Mesh routers use.
func appMeshService(s *flaggerv1beta1.CanarySpec) {
	s.Service.MeshName = "global"
	s.Service.Backends = []string{"backend.test", "arn:aws:appmesh:eu-west-1:000000000000:mesh/global/virtualService/ext"}
	s.Service.Hosts = []string{"app.example.com"}
	s.Service.Timeout = "15s"
	s.Service.TargetPort = intstr.FromInt(8080)
	s.Service.Match = []flaggerv1beta1.HTTPMatchRequest{{URI: &flaggerv1beta1.StringMatch{Prefix: ptr.To("/api")}}}
	s.Service.Retries = &flaggerv1beta1.HTTPRetry{Attempts: 3, PerTryTimeout: "5s", RetryOn: "gateway-error, client-error"}
}

// appMeshABTesting makes the analysis an A/B test on headers, which App
// Mesh matches exactly, by prefix, suffix or regex.
func appMeshABTesting(a *flaggerv1beta1.CanaryAnalysis) {
	a.Iterations = ptr.To[int32](10)
	a.Match = []flaggerv1beta1.HTTPMatchConditions{
		{Headers: map[string]flaggerv1beta1.HeaderMatch{"x-canary": {Exact: ptr.To("insider")}}},
		{Headers: map[string]flaggerv1beta1.HeaderMatch{"user-agent": {Regex: ptr.To(".*Firefox.*")}, "x-region": {Prefix: ptr.To("eu-")}}},
	}
}

var appMeshProvider = splitProvider{
	name:      flaggerv1beta1.ProviderAppMesh,
	dir:       "appmesh",
	spec:      appMeshService,
	abTesting: appMeshABTesting,
	object: func(ns string) client.Object {
		return &appmeshv1beta1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "podinfo." + ns, Namespace: ns}}
	},
	specOf: func(t *testing.T, obj client.Object) []byte {
		return specYAML(t, obj.(*appmeshv1beta1.VirtualService).Spec)
	},
	render: router.RenderAppMeshVirtualService,
	edit: `{"spec":{"routes":[{"name":"podinfo","http":{"match":{"prefix":"/"},"action":{"weightedTargets":[` +
		`{"virtualNodeName":"podinfo-canary","weight":50},{"virtualNodeName":"podinfo-primary","weight":50}]}}}]}}`,
}

var appMeshV1beta2Provider = splitProvider{
	name:      flaggerv1beta1.ProviderAppMeshV1beta2,
	dir:       "appmesh-v1beta2",
	spec:      appMeshService,
	abTesting: appMeshABTesting,
	object: func(ns string) client.Object {
		return &appmeshv1beta2.VirtualRouter{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}
	},
	specOf: func(t *testing.T, obj client.Object) []byte {
		return specYAML(t, obj.(*appmeshv1beta2.VirtualRouter).Spec)
	},
	render: router.RenderAppMeshVirtualRouter,
	edit: `{"spec":{"routes":[{"name":"podinfo","httpRoute":{"match":{"prefix":"/"},"action":{"weightedTargets":[` +
		`{"virtualNodeRef":{"name":"podinfo-canary"},"weight":50},{"virtualNodeRef":{"name":"podinfo-primary"},"weight":50}]}}}]}}`,
}

func TestAppMeshRouter_WritesNodesAndTheCanaryService(t *testing.T) {
	t.Parallel()
	cd, r, _ := newSplitCanary(t, appMeshProvider)
	ns := cd.Namespace
	if err := env.Client.Patch(t.Context(), cd, client.RawPatch("application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"appmesh.flagger.app/accesslog":"enabled"}}}`))); err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(testContext(t), cd, podinfo); err != nil {
		t.Fatal(err)
	}
	for name, host := range map[string]string{"podinfo": "podinfo-primary.", "podinfo-primary": "podinfo-primary.", "podinfo-canary": "podinfo-canary."} {
		vn := &appmeshv1beta1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		assertOwnedBy(t, cd, vn)
		s := vn.Spec
		if s.MeshName != "global" || s.ServiceDiscovery.DNS.HostName != host+ns || s.Listeners[0].PortMapping != (appmeshv1beta1.PortMapping{Port: 9898, Protocol: "http"}) ||
			len(s.Backends) != 2 || s.Logging == nil || s.Logging.AccessLog.File.Path != "/dev/stdout" {
			t.Errorf("VirtualNode %s spec = %+v, want mesh global, host %s%s, port 9898, two backends, an access log", name, s, host, ns)
		}
	}
	vs := &appmeshv1beta1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-canary." + ns, Namespace: ns}}
	assertOwnedBy(t, cd, vs)
	if vs.Spec.VirtualRouter.Name != "podinfo-canary" || vs.Spec.Routes[0].HTTP.Action.WeightedTargets[0] != (appmeshv1beta1.WeightedTarget{VirtualNodeName: "podinfo-canary", Weight: 100}) {
		t.Errorf("canary VirtualService = %+v, want router podinfo-canary sending everything to the canary node", vs.Spec)
	}
	apex := appMeshProvider.object(ns)
	assertOwnedBy(t, cd, apex)
	if a := apex.GetAnnotations(); a["gateway.appmesh.k8s.aws/expose"] != "true" || a["gateway.appmesh.k8s.aws/domain"] != "app.example.com," ||
		a["gateway.appmesh.k8s.aws/timeout"] != "15s" || a["gateway.appmesh.k8s.aws/retries"] != "3" {
		t.Errorf("apex VirtualService annotations = %v, want the App Mesh gateway's for app.example.com", a)
	}
}

func TestAppMeshRouter_NeedsAMeshName(t *testing.T) {
	t.Parallel()
	cd, r, writes := newSplitCanary(t, splitProvider{name: flaggerv1beta1.ProviderAppMesh, spec: func(*flaggerv1beta1.CanarySpec) {}})
	if err := r.Reconcile(testContext(t), cd, podinfo); !problem.Is(err, problem.UnsupportedRouting) || !strings.Contains(err.Error(), "appmesh needs spec.service.meshName") {
		t.Errorf("Reconcile error = %v, want a ConfigError asking for spec.service.meshName", err)
	}
	if n := writes(); n != 0 {
		t.Errorf("Reconcile wrote %d times", n)
	}
}

func TestAppMeshV1beta2Router_SelectsPodsAndKeepsTheControllersFields(t *testing.T) {
	t.Parallel()
	cd, r, _ := newSplitCanary(t, appMeshV1beta2Provider)
	ns, ctx := cd.Namespace, testContext(t)
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	for name, pods := range map[string]string{"podinfo-primary": "podinfo-primary", "podinfo-canary": "podinfo"} {
		vn := &appmeshv1beta2.VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		assertOwnedBy(t, cd, vn)
		s := vn.Spec
		if s.PodSelector.MatchLabels["app"] != pods || s.ServiceDiscovery.DNS.Hostname != name+"."+ns+".svc.cluster.local." ||
			s.Listeners[0].PortMapping.Port != 8080 || s.Listeners[0].Timeout.HTTP.PerRequest.Value != 15000 ||
			s.Backends[0].VirtualService.VirtualServiceRef.Name != "backend.test" || !strings.HasPrefix(*s.Backends[1].VirtualService.VirtualServiceARN, "arn:aws:") {
			t.Errorf("VirtualNode %s spec = %+v", name, s)
		}
	}
	for name, routerName := range map[string]string{"podinfo": "podinfo", "podinfo-canary": "podinfo-canary"} {
		vs := &appmeshv1beta2.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		assertOwnedBy(t, cd, vs)
		if ref := vs.Spec.Provider.VirtualRouter.VirtualRouterRef; ref.Name != routerName {
			t.Errorf("VirtualService %s is provided by %s, want %s", name, ref.Name, routerName)
		}
	}

	// The App Mesh controller fills in awsName and meshRef; Sluice keeps them.
	patchAs(t, &appmeshv1beta2.VirtualRouter{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}},
		`{"spec":{"awsName":"podinfo_`+ns+`","meshRef":{"name":"global","uid":"1234"}}}`)
	if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 70, Canary: 30}); err != nil {
		t.Fatal(err)
	}
	vr := &appmeshv1beta2.VirtualRouter{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}
	assertOwnedBy(t, cd, vr)
	if vr.Spec.AWSName == nil || vr.Spec.MeshRef == nil || vr.Spec.MeshRef.Name != "global" {
		t.Errorf("awsName %v and meshRef %+v were not kept", vr.Spec.AWSName, vr.Spec.MeshRef)
	}
}
