package router_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/router"
)

func TestEnsureServices_CreatesApexPrimaryAndCanary(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, nil)
	ensureServices(t, cd, podinfo)

	wantPorts := []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 9898, TargetPort: intstr.FromInt32(9898)}}
	for _, tc := range []struct {
		name     string
		selector map[string]string
	}{
		{name: "podinfo", selector: map[string]string{"app": "podinfo-primary"}},
		{name: "podinfo-primary", selector: map[string]string{"app": "podinfo-primary"}},
		{name: "podinfo-canary", selector: map[string]string{"app": "podinfo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := getService(t, ns, tc.name)
			if svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.ClusterIP == corev1.ClusterIPNone {
				t.Errorf("type %s, clusterIP %q; want a ClusterIP Service with an address", svc.Spec.Type, svc.Spec.ClusterIP)
			}
			if diff := cmpDiff(tc.selector, svc.Spec.Selector); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if diff := cmpDiff(wantPorts, svc.Spec.Ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			if got := svc.Labels["app"]; got != tc.name {
				t.Errorf("label app = %q, want %q", got, tc.name)
			}
			wantOwners := []metav1.OwnerReference{{
				APIVersion: "flagger.app/v1beta1", Kind: "Canary", Name: "podinfo", UID: cd.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}}
			if diff := cmpDiff(wantOwners, svc.OwnerReferences); diff != "" {
				t.Errorf("owner references (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnsureServices_RendersServiceSpec(t *testing.T) {
	t.Parallel()
	port := func(name string, target intstr.IntOrString, appProtocol *string) []corev1.ServicePort {
		return []corev1.ServicePort{{Name: name, Protocol: corev1.ProtocolTCP, Port: 9898, TargetPort: target, AppProtocol: appProtocol}}
	}
	for _, tc := range []struct {
		name string
		edit func(*flaggerv1beta1.CanaryService)
		// check is called for each Service with whether it is the apex.
		check func(t *testing.T, svc *corev1.Service, apex bool)
	}{
		{
			name: "port name and target port",
			edit: func(s *flaggerv1beta1.CanaryService) { s.PortName = "web"; s.TargetPort = intstr.FromInt32(8080) },
			check: func(t *testing.T, svc *corev1.Service, _ bool) {
				if diff := cmpDiff(port("web", intstr.FromInt32(8080), nil), svc.Spec.Ports); diff != "" {
					t.Errorf("ports (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "named target port and app protocol",
			edit: func(s *flaggerv1beta1.CanaryService) {
				s.TargetPort = intstr.FromString("http-web")
				s.AppProtocol = "grpc"
			},
			check: func(t *testing.T, svc *corev1.Service, _ bool) {
				if diff := cmpDiff(port("http", intstr.FromString("http-web"), ptr.To("grpc")), svc.Spec.Ports); diff != "" {
					t.Errorf("ports (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "headless primary and canary",
			edit: func(s *flaggerv1beta1.CanaryService) { s.Headless = true },
			check: func(t *testing.T, svc *corev1.Service, apex bool) {
				if headless := svc.Spec.ClusterIP == corev1.ClusterIPNone; headless == apex {
					t.Errorf("clusterIP %q; want headless only for primary and canary", svc.Spec.ClusterIP)
				}
			},
		},
		{
			name: "traffic distribution",
			edit: func(s *flaggerv1beta1.CanaryService) {
				s.TrafficDistribution = corev1.ServiceTrafficDistributionPreferClose
			},
			check: func(t *testing.T, svc *corev1.Service, _ bool) {
				if got := ptr.Deref(svc.Spec.TrafficDistribution, ""); got != corev1.ServiceTrafficDistributionPreferClose {
					t.Errorf("trafficDistribution = %q, want PreferClose", got)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) { tc.edit(&s.Service) })
			ensureServices(t, cd, podinfo)
			for _, name := range []string{"podinfo", "podinfo-primary", "podinfo-canary"} {
				tc.check(t, getService(t, ns, name), name == "podinfo")
			}
		})
	}
}

func TestEnsureServices_DiscoversContainerPorts(t *testing.T) {
	t.Parallel()
	cport := func(name string, port int32) corev1.ContainerPort {
		return corev1.ContainerPort{Name: name, ContainerPort: port}
	}
	sport := func(name string, port int32) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(port)}
	}
	httpPort := sport("http", 9898)
	for _, tc := range []struct {
		name       string
		targetPort intstr.IntOrString
		target     router.Target
		want       []corev1.ServicePort
	}{
		{
			name: "named and unnamed ports, service port left out",
			target: router.Target{Containers: []router.Container{
				{Name: "app", Ports: []corev1.ContainerPort{cport("http", 9898), cport("metrics", 9797), cport("", 7000)}},
			}},
			want: []corev1.ServicePort{httpPort, sport("metrics", 9797), sport("tcp-app-2", 7000)},
		},
		{
			name: "sidecars left out",
			target: router.Target{Containers: []router.Container{
				{Name: "istio-proxy", Ports: []corev1.ContainerPort{cport("http-envoy-prom", 15090)}},
				{Name: "app", Ports: []corev1.ContainerPort{cport("grpc", 9999)}},
				{Name: "envoy", Ports: []corev1.ContainerPort{cport("admin", 9901)}},
			}},
			want: []corev1.ServicePort{httpPort, sport("grpc", 9999)},
		},
		{
			name: "duplicates across containers left out",
			target: router.Target{Containers: []router.Container{
				{Name: "app", Ports: []corev1.ContainerPort{cport("metrics", 9797), cport("http", 8000)}},
				{Name: "helper", Ports: []corev1.ContainerPort{cport("metrics", 9798), cport("", 9797), cport("", 7000)}},
			}},
			want: []corev1.ServicePort{httpPort, sport("metrics", 9797), sport("tcp-helper-2", 7000)},
		},
		{
			name:       "numeric target port left out",
			targetPort: intstr.FromInt32(8080),
			target: router.Target{Containers: []router.Container{
				{Name: "app", Ports: []corev1.ContainerPort{cport("web", 8080), cport("metrics", 9797)}},
			}},
			want: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 9898, TargetPort: intstr.FromInt32(8080)},
				sport("metrics", 9797),
			},
		},
		{
			name:       "named target port left out",
			targetPort: intstr.FromString("web"),
			target: router.Target{Containers: []router.Container{
				{Name: "app", Ports: []corev1.ContainerPort{cport("web", 8080), cport("metrics", 9797)}},
			}},
			want: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 9898, TargetPort: intstr.FromString("web")},
				sport("metrics", 9797),
			},
		},
		{
			name: "UDP port keeps its protocol",
			target: router.Target{Containers: []router.Container{
				{Name: "app", Ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}}},
			}},
			want: []corev1.ServicePort{httpPort, {Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) {
				s.Service.PortDiscovery = true
				s.Service.TargetPort = tc.targetPort
			})
			tg := tc.target
			tg.SelectorLabel, tg.SelectorValue = podinfo.SelectorLabel, podinfo.SelectorValue
			ensureServices(t, cd, tg)
			for _, name := range []string{"podinfo", "podinfo-primary", "podinfo-canary"} {
				if diff := cmpDiff(tc.want, getService(t, ns, name).Spec.Ports); diff != "" {
					t.Errorf("%s ports (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

func TestPodContainers_ListsContainersWithTheirPorts(t *testing.T) {
	t.Parallel()
	spec := &corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Ports: []corev1.ContainerPort{{ContainerPort: 1}}}},
		Containers: []corev1.Container{
			{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}}},
			{Name: "istio-proxy"},
		},
	}
	want := []router.Container{
		{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}}},
		{Name: "istio-proxy"},
	}
	if diff := cmpDiff(want, router.PodContainers(spec)); diff != "" {
		t.Errorf("PodContainers (-want +got):\n%s", diff)
	}
}

func TestEnsureServices_KeepsNodePortsAndClusterIP(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, nil)
	ensureServices(t, cd, podinfo)
	patchAs(t, getService(t, ns, "podinfo"), `{"spec":{"type":"NodePort"}}`)
	before := getService(t, ns, "podinfo")
	nodePort := before.Spec.Ports[0].NodePort
	if nodePort == 0 {
		t.Fatal("the API server allocated no node port")
	}
	canaryIP := getService(t, ns, "podinfo-canary").Spec.ClusterIP

	// A new name for the same port number: the API server itself keeps
	// node ports only for unchanged port names.
	cd.Spec.Service.PortName = "web"
	cd.Spec.Service.AppProtocol = "http"
	cd.Spec.Service.PortDiscovery = true
	tg := podinfo
	tg.Containers = []router.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9797}}}}
	ensureServices(t, cd, tg)

	after := getService(t, ns, "podinfo")
	if after.Spec.Type != corev1.ServiceTypeNodePort || after.Spec.ClusterIP != before.Spec.ClusterIP {
		t.Errorf("type %s, clusterIP %s; want NodePort and %s kept", after.Spec.Type, after.Spec.ClusterIP, before.Spec.ClusterIP)
	}
	if got := after.Spec.Ports[0]; got.NodePort != nodePort || got.Name != "web" || ptr.Deref(got.AppProtocol, "") != "http" {
		t.Errorf("port %+v; want port web with node port %d kept and appProtocol http", got, nodePort)
	}
	if len(after.Spec.Ports) != 2 || after.Spec.Ports[1].NodePort == 0 {
		t.Errorf("ports %+v; want the discovered port with a node port of its own", after.Spec.Ports)
	}
	if got := getService(t, ns, "podinfo-canary").Spec.ClusterIP; got != canaryIP {
		t.Errorf("canary clusterIP changed from %s to %s", canaryIP, got)
	}
}

func TestEnsureServices_WritesNothingWhenNothingChanged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*flaggerv1beta1.CanaryService)
	}{
		{name: "defaults", edit: func(*flaggerv1beta1.CanaryService) {}},
		{name: "every option", edit: func(s *flaggerv1beta1.CanaryService) {
			s.PortName, s.AppProtocol, s.TargetPort = "grpc", "grpc", intstr.FromString("grpc")
			s.Headless, s.PortDiscovery = true, true
			s.TrafficDistribution = corev1.ServiceTrafficDistributionPreferClose
			s.Apex = &flaggerv1beta1.CustomMetadata{Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"c": "d"}}
			s.UnmanagedMetadata = &flaggerv1beta1.UnmanagedMetadata{Labels: []string{"x"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) { tc.edit(&s.Service) })
			tg := podinfo
			tg.Containers = []router.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "grpc", ContainerPort: 9000}, {ContainerPort: 9797}}}}
			c, writes := countingClient(t)
			ctx := testContext(t)
			if err := router.EnsureServices(ctx, c, cd, tg); err != nil {
				t.Fatal(err)
			}
			if got := writes.Load(); got != 3 {
				t.Errorf("first EnsureServices wrote %d times, want 3 creates", got)
			}
			versions := map[string]string{}
			for _, name := range []string{"podinfo", "podinfo-primary", "podinfo-canary"} {
				versions[name] = getService(t, ns, name).ResourceVersion
			}
			writes.Store(0)
			if err := router.EnsureServices(ctx, c, cd, tg); err != nil {
				t.Fatal(err)
			}
			if got := writes.Load(); got != 0 {
				t.Errorf("second EnsureServices wrote %d times, want none", got)
			}
			for name, rv := range versions {
				if got := getService(t, ns, name).ResourceVersion; got != rv {
					t.Errorf("%s resourceVersion changed from %s to %s", name, rv, got)
				}
			}
		})
	}
}

func TestEnsureServices_PointsTheApexAtThePrimaryAlways(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, live, want string
	}{
		{name: "canary reset to primary", live: "podinfo", want: "podinfo-primary"},
		{name: "primary kept", live: "podinfo-primary", want: "podinfo-primary"},
		{name: "other reset to primary", live: "something-else", want: "podinfo-primary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			cd := newCanary(t, ns, nil)
			ensureServices(t, cd, podinfo)
			patchAs(t, getService(t, ns, "podinfo"), `{"spec":{"selector":{"app":"`+tc.live+`"}}}`)
			ensureServices(t, cd, podinfo)
			if diff := cmpDiff(map[string]string{"app": tc.want}, getService(t, ns, "podinfo").Spec.Selector); diff != "" {
				t.Errorf("apex selector (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnsureServices_RefusesServiceItDoesNotControl(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		owners  func(ns string) []metav1.OwnerReference
		wantMsg string
	}{
		{
			name: "controlled by another object",
			owners: func(string) []metav1.OwnerReference {
				return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "other", UID: "1234", Controller: ptr.To(true)}}
			},
			wantMsg: "is controlled by Deployment other",
		},
		{name: "no controller", owners: func(string) []metav1.OwnerReference { return nil }, wantMsg: "has no controller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			cd := newCanary(t, ns, nil)
			foreign := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns, OwnerReferences: tc.owners(ns)},
				Spec: corev1.ServiceSpec{
					Selector: map[string]string{"app": "mine"},
					Ports:    []corev1.ServicePort{{Name: "web", Port: 80}},
				},
			}
			if err := env.Client.Create(t.Context(), foreign); err != nil {
				t.Fatal(err)
			}
			err := router.EnsureServices(testContext(t), env.Client, cd, podinfo)
			if !problem.Is(err, problem.NotOwned) || !strings.Contains(err.Error(), "Service "+ns+"/podinfo "+tc.wantMsg) {
				t.Fatalf("EnsureServices error = %v; want a NotOwnedError saying the Service %s", err, tc.wantMsg)
			}
			if got := getService(t, ns, "podinfo"); got.ResourceVersion != foreign.ResourceVersion {
				t.Errorf("the foreign Service was changed: %+v", got.Spec)
			}
		})
	}
}
