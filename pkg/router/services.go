package router

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// defaultPortName names the Service port when spec.service.portName is unset.
const defaultPortName = "http"

// sidecars are the containers whose ports port discovery leaves out.
var sidecars = []string{"istio-proxy", "envoy"}

// EnsureServices creates or updates the three ClusterIP Services of a
// Canary, owned by it (names from ServiceNames):
//
//   - <apex>-canary selects the target's pods (<label>=<value>);
//   - <apex>-primary selects the primary's pods (<label>=<value>-primary);
//   - <apex> selects the primary's pods, always: as in Flagger, the apex
//     never points at the canary; mesh and ingress routers split the
//     traffic sent to it, and on provider kubernetes the primary's
//     rolling update is the switch.
//
// Each Service carries the label <label>=<service name> and the labels and
// annotations of spec.service.canary, primary or apex (see SetMetadata).
// The type and clusterIP are chosen at creation (headless primary and
// canary with spec.service.headless) and kept afterwards, as are node
// ports; ports, selector and trafficDistribution follow the spec.
// A Service that exists and is not controlled by the Canary is not edited
// (see Ensure). Writes happen only when something differs.
func EnsureServices(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary, t Target) error {
	if err := checkServiceInputs(cd, t); err != nil {
		return err
	}
	_, primary, canary := ServiceNames(cd)
	roles := []serviceRole{
		{name: canary, meta: cd.Spec.Service.Canary, headless: cd.Spec.Service.Headless, selector: fixed(canarySelector(t))},
		{name: primary, meta: cd.Spec.Service.Primary, headless: cd.Spec.Service.Headless, selector: fixed(primarySelector(t))},
		apexRole(cd, fixed(primarySelector(t))),
	}
	// The three are ensured concurrently: the API server allocates each a
	// cluster IP, which makes a create slow (a quarter of a second on a
	// busy control plane), and they do not depend on each other.
	var g errgroup.Group
	for _, r := range roles {
		g.Go(func() error {
			_, err := ensureService(ctx, c, cd, t, r)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("ensuring the Services of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// ReleaseServices prepares the apex Service to outlive its Canary, which is
// being deleted with revertOnDeletion: it selects the target's pods and no
// longer has the Canary as owner, so the garbage collector keeps it while
// it deletes the primary and canary Services with the Canary. An apex
// Service the Canary does not control is left alone.
func ReleaseServices(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary, t Target) error {
	apex, _, _ := ServiceNames(cd)
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: apex}, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading the apex Service %s/%s: %w", cd.Namespace, apex, err)
	}
	if !IsControlledBy(svc, cd) {
		return nil
	}
	if err := checkServiceInputs(cd, t); err != nil {
		return err
	}
	before := svc.DeepCopy()
	svc.Spec.Selector = canarySelector(t)
	refs := svc.GetOwnerReferences()[:0:0]
	for _, r := range svc.GetOwnerReferences() {
		if r.UID != cd.UID {
			refs = append(refs, r)
		}
	}
	svc.SetOwnerReferences(refs)
	if err := c.Patch(ctx, svc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("releasing the apex Service %s/%s: %w", cd.Namespace, apex, err)
	}
	return nil
}

// serviceRole is what differs between the apex, primary and canary Services.
type serviceRole struct {
	name     string
	meta     *flaggerv1beta1.CustomMetadata
	headless bool
	// selector returns the selector to set, given the live one (nil when
	// the Service does not exist yet).
	selector func(live map[string]string) map[string]string
}

// apexRole is the role of the apex Service with the given selector choice.
func apexRole(cd *flaggerv1beta1.Canary, selector func(map[string]string) map[string]string) serviceRole {
	apex, _, _ := ServiceNames(cd)
	return serviceRole{name: apex, meta: cd.Spec.Service.Apex, selector: selector}
}

// fixed returns a selector choice that always picks sel.
func fixed(sel map[string]string) func(map[string]string) map[string]string {
	return func(map[string]string) map[string]string { return sel }
}

// primarySelector selects the primary's pods.
func primarySelector(t Target) map[string]string {
	return map[string]string{t.SelectorLabel: t.SelectorValue + "-primary"}
}

// canarySelector selects the target's (canary) pods.
func canarySelector(t Target) map[string]string {
	return map[string]string{t.SelectorLabel: t.SelectorValue}
}

// checkServiceInputs rejects what cannot make a valid Service.
func checkServiceInputs(cd *flaggerv1beta1.Canary, t Target) error {
	switch {
	case t.SelectorLabel == "" || t.SelectorValue == "":
		return fmt.Errorf("canary %s/%s: the target's selector label is unknown", cd.Namespace, cd.Name)
	case cd.Spec.Service.Port == 0:
		return fmt.Errorf("canary %s/%s: spec.service.port is not set", cd.Namespace, cd.Name)
	}
	return nil
}

// ensureService creates or patches one of the Canary's Services.
func ensureService(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary, t Target, r serviceRole) (controllerutil.OperationResult, error) {
	ports := servicePorts(cd.Spec.Service, t)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: r.name, Namespace: cd.Namespace}}
	return Ensure(ctx, c, cd, svc, func() error {
		renderService(svc, cd.Spec.Service, t, r, ports)
		return nil
	})
}

// renderService sets the fields Sluice manages onto svc, which is empty or
// the live Service.
func renderService(svc *corev1.Service, spec flaggerv1beta1.CanaryService, t Target, r serviceRole, ports []corev1.ServicePort) {
	labels := make(map[string]string)
	var annotations map[string]string
	if r.meta != nil {
		maps.Copy(labels, r.meta.Labels)
		annotations = r.meta.Annotations
	}
	labels[t.SelectorLabel] = r.name
	SetMetadata(svc, labels, annotations, spec.UnmanagedMetadata)

	if svc.UID == "" {
		// The type and clusterIP are set once: clusterIP is immutable, and
		// someone may have made the Service a NodePort or LoadBalancer.
		svc.Spec.Type = corev1.ServiceTypeClusterIP
		if r.headless {
			svc.Spec.ClusterIP = corev1.ClusterIPNone
		}
		svc.Spec.Selector = r.selector(nil)
	} else {
		svc.Spec.Selector = r.selector(svc.Spec.Selector)
	}
	svc.Spec.Ports = keepNodePorts(ports, svc.Spec.Ports)
	svc.Spec.TrafficDistribution = nil
	if spec.TrafficDistribution != "" {
		svc.Spec.TrafficDistribution = ptr.To(spec.TrafficDistribution)
	}
}

// servicePorts returns the ports of the Services: spec.service.port and,
// with portDiscovery, the target's other container ports.
func servicePorts(spec flaggerv1beta1.CanaryService, t Target) []corev1.ServicePort {
	target := spec.TargetPort
	if isZero(target) {
		target = intstr.FromInt32(spec.Port)
	}
	svcPort := corev1.ServicePort{
		Name:       cmp.Or(spec.PortName, defaultPortName),
		Protocol:   corev1.ProtocolTCP,
		Port:       spec.Port,
		TargetPort: target,
	}
	if spec.AppProtocol != "" {
		svcPort.AppProtocol = ptr.To(spec.AppProtocol)
	}
	ports := []corev1.ServicePort{svcPort}
	if spec.PortDiscovery {
		ports = append(ports, discoverPorts(svcPort, t)...)
	}
	return ports
}

// discoverPorts returns a Service port for every container port of the
// target except the sidecars' and the main port (by number or, for a named
// targetPort, by name). Unnamed ports are named tcp-<container>-<index>.
// A port whose name or number and protocol is already taken is left out.
func discoverPorts(svcPort corev1.ServicePort, t Target) []corev1.ServicePort {
	containers := t.Containers
	type portKey struct {
		port     int32
		protocol corev1.Protocol
	}
	names := map[string]bool{svcPort.Name: true}
	taken := map[portKey]bool{{svcPort.Port, svcPort.Protocol}: true}
	var out []corev1.ServicePort
	for _, ctr := range containers {
		if slices.Contains(sidecars, ctr.Name) {
			continue
		}
		for i, p := range ctr.Ports {
			if p.ContainerPort == svcPort.Port || isTarget(svcPort.TargetPort, p) {
				continue
			}
			name := p.Name
			switch {
			case name != "":
			case ctr.Name != "":
				name = fmt.Sprintf("tcp-%s-%d", ctr.Name, i)
			default:
				name = fmt.Sprintf("tcp-%d", i)
			}
			key := portKey{p.ContainerPort, cmp.Or(p.Protocol, corev1.ProtocolTCP)}
			if names[name] || taken[key] {
				continue
			}
			names[name], taken[key] = true, true
			out = append(out, corev1.ServicePort{
				Name:       name,
				Protocol:   key.protocol,
				Port:       p.ContainerPort,
				TargetPort: intstr.FromInt32(p.ContainerPort),
			})
		}
	}
	return out
}

// isTarget reports whether a container port is the Service port's target.
func isTarget(target intstr.IntOrString, p corev1.ContainerPort) bool {
	if target.Type == intstr.String {
		return p.Name != "" && p.Name == target.StrVal
	}
	return p.ContainerPort == target.IntVal
}

// isZero reports whether an IntOrString is unset.
func isZero(v intstr.IntOrString) bool {
	return (v.Type == intstr.Int && v.IntVal == 0) || (v.Type == intstr.String && v.StrVal == "")
}

// keepNodePorts copies the node ports of the live ports onto the desired
// ones, matching by name and then by number and protocol, so that a
// Service someone turned into a NodePort or LoadBalancer keeps them.
func keepNodePorts(desired, live []corev1.ServicePort) []corev1.ServicePort {
	used := make(map[int32]bool)
	match := func(d *corev1.ServicePort, same func(l corev1.ServicePort) bool) {
		for _, l := range live {
			if d.NodePort == 0 && l.NodePort != 0 && !used[l.NodePort] && same(l) {
				d.NodePort, used[l.NodePort] = l.NodePort, true
			}
		}
	}
	for i := range desired {
		d := &desired[i]
		match(d, func(l corev1.ServicePort) bool { return l.Name == d.Name })
	}
	for i := range desired {
		d := &desired[i]
		match(d, func(l corev1.ServicePort) bool { return l.Port == d.Port && l.Protocol == d.Protocol })
	}
	return desired
}
