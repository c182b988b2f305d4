//go:build e2e

package takeover

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

const (
	// ns holds the workloads and Canaries.
	ns = "apps"
	// flaggerNamespace is where Flagger is installed: its Deployment and
	// its leader-election Lease.
	flaggerNamespace = "flagger-system"
	// flaggerLease is the Lease Flagger's leader election holds.
	flaggerLease = "flagger-leader-election"

	// istioApp is a canary release through Istio (VirtualService and
	// DestinationRules), blueGreenApp a blue/green release with the
	// kubernetes provider whose target reads a ConfigMap, which Flagger
	// copies for the primary.
	istioApp     = "podinfo"
	blueGreenApp = "bluegreen"

	image = "ghcr.io/stefanprodan/podinfo:"
)

// apps are the two Canaries, in the order they are reported.
var apps = []string{istioApp, blueGreenApp}

// workload is a podinfo Deployment with two replicas of tag.
func workload(name, tag string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers: []corev1.Container{{
						Name: "podinfod", Image: image + tag,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
					}},
				},
			},
		},
	}
}

// blueGreenConfig is the ConfigMap the blue/green target reads.
func blueGreenConfig() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: blueGreenApp + "-config"},
		Data:       map[string]string{"color": "blue"},
	}
}

// workloads are the two targets and the ConfigMap.
func workloads() []client.Object {
	bg := workload(blueGreenApp, "6.0.0")
	bg.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{
		ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: blueGreenApp + "-config"}},
	}}
	return []client.Object{blueGreenConfig(), workload(istioApp, "6.0.0"), bg}
}

// canaries are the Canaries as a Flagger user writes them, with no
// metrics and no webhooks: an analysis passes once the canary is ready.
// The Istio one goes to 50% in one step; the blue/green one runs one
// iteration.
func canaries() []client.Object {
	canary := func(name, provider string, a *flaggerv1beta1.CanaryAnalysis) *flaggerv1beta1.Canary {
		a.Interval, a.Threshold = "10s", 2
		return &flaggerv1beta1.Canary{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: flaggerv1beta1.CanarySpec{
				Provider:  provider,
				TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
				Service:   flaggerv1beta1.CanaryService{Port: 9898},
				Analysis:  a,
			},
		}
	}
	return []client.Object{
		canary(istioApp, "", &flaggerv1beta1.CanaryAnalysis{MaxWeight: ptr.To[int32](50), StepWeight: ptr.To[int32](50)}),
		canary(blueGreenApp, flaggerv1beta1.ProviderKubernetes, &flaggerv1beta1.CanaryAnalysis{Iterations: ptr.To[int32](1)}),
	}
}

// flaggerDeployment is Flagger's Deployment as its Helm chart names and
// labels it. The Flagger the tests run is a process beside the cluster;
// this object is what a controller looking for a live Flagger in the
// cluster sees, and its replicas follow that process.
func flaggerDeployment() *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": "flagger", "app.kubernetes.io/instance": "flagger"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: flaggerNamespace, Name: "flagger", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers: []corev1.Container{{
						Name: "flagger", Image: "ghcr.io/fluxcd/flagger:1.44.0",
						Args: []string{"./flagger", "-mesh-provider=istio", "-enable-leader-election=true", "-leader-election-namespace=" + flaggerNamespace},
					}},
				},
			},
		},
	}
}

// facts are what must not change when a controller takes over, as
// "<Kind>/<name> <what>" -> value.
type facts map[string]string

// observe reads the objects Flagger created for both Canaries and the
// Canaries' status.
func observe(ctx context.Context, c client.Client) (facts, error) {
	f := facts{}
	for _, app := range apps {
		for _, name := range []string{app, app + "-primary", app + "-canary"} {
			svc := &corev1.Service{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
				return nil, fmt.Errorf("reading Service %s: %w", name, err)
			}
			k := "Service/" + name
			f[k+" uid"], f[k+" clusterIP"], f[k+" selector"] = string(svc.UID), svc.Spec.ClusterIP, fmt.Sprint(svc.Spec.Selector)
		}
		for _, name := range []string{app, app + "-primary"} {
			d := &appsv1.Deployment{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
				return nil, fmt.Errorf("reading Deployment %s: %w", name, err)
			}
			k := "Deployment/" + name
			f[k+" uid"], f[k+" generation"] = string(d.UID), strconv.FormatInt(d.Generation, 10)
			f[k+" replicas"], f[k+" image"] = strconv.Itoa(int(ptr.Deref(d.Spec.Replicas, 1))), d.Spec.Template.Spec.Containers[0].Image
			if strings.HasSuffix(name, "-primary") {
				tmpl, err := json.Marshal(d.Spec.Template)
				if err != nil {
					return nil, fmt.Errorf("encoding the template of %s: %w", name, err)
				}
				f[k+" template"] = string(tmpl)
			}
		}
		cd := &flaggerv1beta1.Canary{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: app}, cd); err != nil {
			return nil, fmt.Errorf("reading Canary %s: %w", app, err)
		}
		k := "Canary/" + app
		f[k+" phase"], f[k+" canaryWeight"] = string(cd.Status.Phase), strconv.Itoa(int(cd.Status.CanaryWeight))
		f[k+" lastAppliedSpec"], f[k+" lastPromotedSpec"] = cd.Status.LastAppliedSpec, cd.Status.LastPromotedSpec
		f[k+" trackedConfigs"] = fmt.Sprint(cd.Status.TrackedConfigs)
		for _, cond := range cd.Status.Conditions {
			f[k+" condition "+string(cond.Type)] = string(cond.Status)
		}
	}

	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: blueGreenApp + "-config-primary"}, cm); err != nil {
		return nil, fmt.Errorf("reading the primary's ConfigMap: %w", err)
	}
	f["ConfigMap/"+cm.Name+" uid"], f["ConfigMap/"+cm.Name+" data"] = string(cm.UID), fmt.Sprint(cm.Data)

	vs := &networkingv1.VirtualService{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: istioApp}, vs); err != nil {
		return nil, fmt.Errorf("reading VirtualService %s: %w", istioApp, err)
	}
	if err := routeFacts(f, "VirtualService/"+istioApp, vs, vs.Spec.DeepCopy()); err != nil {
		return nil, err
	}
	f["VirtualService/"+istioApp+" weights"] = weights(vs)
	for _, name := range []string{istioApp + "-primary", istioApp + "-canary"} {
		dr := &networkingv1.DestinationRule{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, dr); err != nil {
			return nil, fmt.Errorf("reading DestinationRule %s: %w", name, err)
		}
		if err := routeFacts(f, "DestinationRule/"+name, dr, dr.Spec.DeepCopy()); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// routeFacts records a routing object's UID, generation and spec.
func routeFacts(f facts, k string, o client.Object, spec any) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encoding the spec of %s: %w", k, err)
	}
	f[k+" uid"], f[k+" generation"], f[k+" spec"] = string(o.GetUID()), strconv.FormatInt(o.GetGeneration(), 10), string(b)
	return nil
}

// weights are the destinations and weights of the VirtualService's last
// HTTP route, the one without match conditions.
func weights(vs *networkingv1.VirtualService) string {
	if len(vs.Spec.Http) == 0 {
		return "no HTTP route"
	}
	var parts []string
	for _, r := range vs.Spec.Http[len(vs.Spec.Http)-1].Route {
		parts = append(parts, fmt.Sprintf("%s=%d", r.GetDestination().GetHost(), r.Weight))
	}
	return strings.Join(parts, " ")
}

// invariant reports whether a fact must hold while a controller takes over
// a Canary at rest: identities (UIDs, ClusterIPs), selectors, what the
// workloads run and at what scale, weights, and the Canary's phase, weight
// and conditions. The routing objects' specs and generations, the
// primaries' templates (whose changes the primaries' generations catch)
// and the Canary's revision hashes may be rewritten in place by the new
// controller; they are reported, not asserted.
func invariant(key string) bool {
	for _, suffix := range []string{" spec", " template", " lastAppliedSpec", " lastPromotedSpec", " trackedConfigs"} {
		if strings.HasSuffix(key, suffix) {
			return false
		}
	}
	if strings.HasSuffix(key, " generation") {
		return strings.HasPrefix(key, "Deployment/")
	}
	return true
}

// breaks reports whether the values an invariant fact took after before
// break it. A condition may appear or be rewritten as long as it stays
// True (Sluice adds Valid=True to Flagger's Promoted); any other fact
// must keep its value.
func breaks(key, before string, vals []string) bool {
	if !invariant(key) {
		return false
	}
	if strings.Contains(key, " condition ") && (before == "True" || before == "") {
		return slices.ContainsFunc(vals, func(v string) bool { return v != "True" })
	}
	return len(vals) > 0
}

// changes lists the facts that differ between before and after, sorted,
// as "key: before -> after", keeping those keep selects.
func changes(before, after facts, keep func(string) bool) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if keep(k) && before[k] != after[k] {
			out = append(out, fmt.Sprintf("%s: %q -> %q", k, before[k], after[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[k]; !ok && keep(k) {
			out = append(out, fmt.Sprintf("%s: (none) -> %q", k, after[k]))
		}
	}
	return out
}

func all(string) bool { return true }

// event is an Event of the apps namespace, as the tests read it.
type event struct {
	component, kind, object, typ, reason, message string
	last                                          time.Time
	count                                         int32
}

func (e event) String() string {
	return fmt.Sprintf("%s %s %s/%s %s: %s (x%d, last %s)", e.component, e.typ, e.kind, e.object, e.reason, e.message, e.count, e.last.Format(time.TimeOnly))
}

// events returns the Events of the apps namespace about Canaries that
// component ("flagger" or "sluice") recorded and that happened at or after
// since (to the second, the Events' resolution), oldest first.
func events(ctx context.Context, c client.Client, component string, since time.Time) ([]event, error) {
	var list corev1.EventList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	var out []event
	for _, e := range list.Items {
		from := e.Source.Component
		if from == "" {
			from = e.ReportingController
		}
		last := e.LastTimestamp.Time
		if last.IsZero() {
			last = e.EventTime.Time
		}
		if from != component || e.InvolvedObject.Kind != "Canary" || last.Before(since.Truncate(time.Second)) {
			continue
		}
		out = append(out, event{
			component: from, kind: e.InvolvedObject.Kind, object: e.InvolvedObject.Name,
			typ: e.Type, reason: e.Reason, message: e.Message, last: last, count: e.Count,
		})
	}
	slices.SortFunc(out, func(a, b event) int { return a.last.Compare(b.last) })
	return out, nil
}

// writesBy lists the objects of the apps namespace that manager (the field
// manager of a controller's writes: "sluice" or "flagger") changed at or
// after since, as "<Kind>/<name>[/<subresource>] at <time>".
func writesBy(ctx context.Context, c client.Client, manager string, since time.Time) ([]string, error) {
	lists := map[string]client.ObjectList{
		"Canary":          &flaggerv1beta1.CanaryList{},
		"Deployment":      &appsv1.DeploymentList{},
		"Service":         &corev1.ServiceList{},
		"ConfigMap":       &corev1.ConfigMapList{},
		"VirtualService":  &networkingv1.VirtualServiceList{},
		"DestinationRule": &networkingv1.DestinationRuleList{},
	}
	var out []string
	for _, kind := range slices.Sorted(maps.Keys(lists)) {
		list := lists[kind]
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing %s: %w", kind, err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, fmt.Errorf("reading the %s list: %w", kind, err)
		}
		for _, item := range items {
			o, err := meta.Accessor(item)
			if err != nil {
				return nil, fmt.Errorf("reading a %s: %w", kind, err)
			}
			for _, m := range o.GetManagedFields() {
				if m.Manager != manager || m.Time == nil || m.Time.Time.Before(since.Truncate(time.Second)) {
					continue
				}
				what := kind + "/" + o.GetName()
				if m.Subresource != "" {
					what += "/" + m.Subresource
				}
				out = append(out, what+" at "+m.Time.Format(time.TimeOnly))
			}
		}
	}
	return out, nil
}
