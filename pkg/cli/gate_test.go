package cli

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/loadtester"
)

// loadTester serves Sluice's load tester on every interface and returns
// its port and an address of this machine that is not loopback, which the
// API server's service proxy accepts as an endpoint.
func loadTester(t *testing.T) (ip string, port int) {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			ip = n.IP.String()
			break
		}
	}
	if ip == "" {
		t.Skip("no non-loopback IPv4 address for the service proxy to reach")
	}
	lt := loadtester.New(loadtester.Config{})
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: lt, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { lt.Close(); _ = srv.Close() })
	return ip, l.Addr().(*net.TCPAddr).Port
}

// serviceFor makes the in-cluster Service flagger-loadtester (port 80)
// whose endpoint is the test's load tester.
func serviceFor(t *testing.T, ns, ip string, port int) {
	t.Helper()
	ctx := t.Context()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "flagger-loadtester", Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(int32(port))}}},
	}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	// The service proxy only dials endpoints that are the IPs of Pods.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "flagger-loadtester-0", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "loadtester", Image: "sluice/loadtester"}}},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "flagger-loadtester-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "flagger-loadtester"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(port))}},
	}
	if err := env.Client.Create(ctx, slice); err != nil {
		t.Fatal(err)
	}
}

// gateCanary writes a Canary whose confirm-promotion webhook asks the load
// tester at url.
func gateCanary(t *testing.T, ns, url string) *flaggerv1beta1.Canary {
	t.Helper()
	return playedCanary(t, ns, "waiting-promotion", func(p *player) {
		for i, h := range p.spec.Analysis.Webhooks {
			if h.Type == flaggerv1beta1.ConfirmPromotionHook {
				p.spec.Analysis.Webhooks[i].URL = url
			}
		}
	})
}

// gateOpen asks the load tester, as the controller does, whether the
// Canary's gate is open.
func gateOpen(t *testing.T, base, ns string) bool {
	t.Helper()
	body := fmt.Sprintf(`{"name": "podinfo", "namespace": %q}`, ns)
	resp, err := http.Post(base+"/gate/check", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestGate_OpensAndClosesThroughTheServiceProxy: a load tester addressed as
// an in-cluster Service is reached through the API server's service proxy.
func TestGate_OpensAndClosesThroughTheServiceProxy(t *testing.T) {
	t.Parallel()
	ip, port := loadTester(t)
	ns := "gate-proxy"
	cd := gateCanary(t, ns, "http://flagger-loadtester."+ns+"/gate/check")
	serviceFor(t, ns, ip, port)
	direct := "http://127.0.0.1:" + strconv.Itoa(port)

	// The API server reads EndpointSlices from its cache: wait until it has it.
	var r result
	eventually(t, "gate open through the proxy", func() error {
		if r = sluice(t, "gate", "open", "podinfo", "-n", cd.Namespace); r.code != 0 {
			return fmt.Errorf("%s", r.err)
		}
		return nil
	})
	want := "http://flagger-loadtester.gate-proxy/gate/open: gate opened for podinfo.gate-proxy (through the API server's proxy to Service gate-proxy/flagger-loadtester port 80)\n"
	if r.out != want {
		t.Errorf("gate open printed %q, want %q", r.out, want)
	}
	if !gateOpen(t, direct, ns) {
		t.Fatal("the load tester's gate is still closed after gate open")
	}
	sluice(t, "gate", "close", "podinfo", "-n", cd.Namespace).ok(t)
	if gateOpen(t, direct, ns) {
		t.Fatal("the load tester's gate is still open after gate close")
	}

	// --direct skips the Service: the in-cluster name does not resolve here.
	sluice(t, "gate", "open", "podinfo", "-n", cd.Namespace, "--direct").
		failsWith(t, "opening the gate at http://flagger-loadtester.gate-proxy/gate/open (directly): ")
}

// TestGate_CallsAnAddressOutsideTheClusterDirectly: an address that names
// no Service is called as it is.
func TestGate_CallsAnAddressOutsideTheClusterDirectly(t *testing.T) {
	t.Parallel()
	_, port := loadTester(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	cd := gateCanary(t, "gate-direct", base+"/gate/check")
	r := sluice(t, "gate", "open", "podinfo", "-n", cd.Namespace).ok(t)
	if !strings.HasSuffix(r.out, "gate opened for podinfo.gate-direct (directly)\n") {
		t.Errorf("gate open printed %q", r.out)
	}
	if !gateOpen(t, base, cd.Namespace) {
		t.Fatal("the load tester's gate is still closed after gate open")
	}
}

func TestGate_RefusesACanaryWithoutGates(t *testing.T) {
	t.Parallel()
	cd := playedCanary(t, "gate-none", "progressing-failed-check", nil)
	sluice(t, "gate", "open", "podinfo", "-n", cd.Namespace).
		failsWith(t, "canary gate-none/podinfo has no confirm-rollout, confirm-traffic-increase or confirm-promotion webhook calling a load tester's /gate/check")
}
