package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
	"github.com/sluicedev/sluice/pkg/router"
)

// view is everything get and explain show about one Canary, read at one
// moment. What could not be read is recorded as an error string in place,
// so that one missing permission does not hide the rest.
type view struct {
	cd       *flaggerv1beta1.Canary
	provider string
	strategy statemachine.Strategy
	target   workloadView
	primary  workloadView
	services []serviceView
	routing  routingView
	hooks    []hookView
	// events are the Canary's events, oldest first.
	events    []corev1.Event
	eventsErr string
}

// workloadView is a workload with its ready and desired replicas.
type workloadView struct {
	kind, name     string
	found          bool
	ready, desired int32
	err            string
}

// serviceView is one of the Canary's Services.
type serviceView struct {
	role, name string
	found      bool
	err        string
}

// routingView is the routing object and the split it holds now.
type routingView struct {
	kind, name string
	routes     *router.Routes
	err        string
}

// hookView is a webhook of the analysis with its last recorded answer.
type hookView struct {
	hook flaggerv1beta1.CanaryWebhook
	// last is the newest result in status.analysis (rollout and
	// pre-rollout webhooks), nil when there is none.
	last *flaggerv1beta1.CanaryCheckResult
	// refusal is the newest "no" of a gate webhook found in the Promoted
	// condition or the events, with its time.
	refusal     string
	refusalTime time.Time
}

// observe reads the Canary's workloads, Services, routing object and events.
func (a *app) observe(ctx context.Context, cs *clients, cd *flaggerv1beta1.Canary) *view {
	v := &view{cd: cd, provider: a.providerOf(cd)}
	v.strategy = strategyOf(cd, v.provider)
	ref := cd.Spec.TargetRef
	v.target = readWorkload(ctx, cs.client, cd.Namespace, ref.Kind, ref.Name)
	v.primary = readWorkload(ctx, cs.client, cd.Namespace, ref.Kind, ref.Name+"-primary")
	apex, primary, canary := router.ServiceNames(cd)
	var primarySvc *corev1.Service
	for _, s := range []struct{ role, name string }{{"apex", apex}, {"primary", primary}, {"canary", canary}} {
		sv := serviceView{role: s.role, name: s.name}
		svc := &corev1.Service{}
		switch err := cs.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: s.name}, svc); {
		case err == nil:
			sv.found = true
			if s.role == "primary" {
				primarySvc = svc
			}
		case !apierrors.IsNotFound(err):
			sv.err = shortError(err)
		}
		v.services = append(v.services, sv)
	}
	v.routing = readRouting(ctx, cs.client, cd, v.provider, primarySvc)
	v.events, v.eventsErr = readEvents(ctx, cs.client, cd)
	v.hooks = hookViews(cd, v.events)
	return v
}

// readWorkload reads a Deployment or DaemonSet's ready and desired replicas.
func readWorkload(ctx context.Context, c client.Client, ns, kind, name string) workloadView {
	w := workloadView{kind: kind, name: name}
	key := client.ObjectKey{Namespace: ns, Name: name}
	var err error
	switch kind {
	case "Deployment":
		d := &appsv1.Deployment{}
		if err = c.Get(ctx, key, d); err == nil {
			w.found, w.ready, w.desired = true, d.Status.ReadyReplicas, ptr.Deref(d.Spec.Replicas, 1)
		}
	case "DaemonSet":
		d := &appsv1.DaemonSet{}
		if err = c.Get(ctx, key, d); err == nil {
			w.found, w.ready, w.desired = true, d.Status.NumberReady, d.Status.DesiredNumberScheduled
		}
	default:
		w.err = fmt.Sprintf("kind %s is not shown", kind)
		return w
	}
	if err != nil && !apierrors.IsNotFound(err) {
		w.err = shortError(err)
	}
	return w
}

// routingObjects names the object each provider routes with, for a Canary.
var routingObjects = map[string]func(cd *flaggerv1beta1.Canary) (kind, name string){
	flaggerv1beta1.ProviderKubernetes:        apexNamed("Service"),
	flaggerv1beta1.ProviderIstio:             apexNamed("VirtualService"),
	flaggerv1beta1.ProviderGatewayAPIV1:      apexNamed("HTTPRoute"),
	flaggerv1beta1.ProviderGatewayAPIV1beta1: apexNamed("HTTPRoute"),
	flaggerv1beta1.ProviderNGINX: func(cd *flaggerv1beta1.Canary) (string, string) {
		if cd.Spec.IngressRef == nil {
			return "Ingress", "(spec.ingressRef is missing)"
		}
		return "Ingress", cd.Spec.IngressRef.Name + "-canary"
	},
	flaggerv1beta1.ProviderLinkerd:     apexNamed("TrafficSplit"),
	flaggerv1beta1.ProviderOSM:         apexNamed("TrafficSplit"),
	flaggerv1beta1.ProviderSMIV1alpha1: apexNamed("TrafficSplit"),
	flaggerv1beta1.ProviderSMIV1alpha2: apexNamed("TrafficSplit"),
	flaggerv1beta1.ProviderSMIV1alpha3: apexNamed("TrafficSplit"),
	flaggerv1beta1.ProviderContour:     apexNamed("HTTPProxy"),
	flaggerv1beta1.ProviderTraefik:     apexNamed("TraefikService"),
}

func apexNamed(kind string) func(*flaggerv1beta1.Canary) (string, string) {
	return func(cd *flaggerv1beta1.Canary) (string, string) {
		apex, _, _ := router.ServiceNames(cd)
		return kind, apex
	}
}

// readRouting reads the split from the router's own object, through the
// router's GetRoutes. The kubernetes router tells the primary's pods by the
// primary Service's selector.
func readRouting(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary, provider string, primarySvc *corev1.Service) routingView {
	base := provider
	if rest, ok := strings.CutPrefix(provider, "smi:"); ok {
		if version, _, ok := strings.Cut(rest, ":"); ok {
			base = "smi:" + version
		}
	}
	name := routingObjects[base]
	if name == nil {
		return routingView{kind: "provider " + provider, err: "not supported by Sluice"}
	}
	rv := routingView{}
	rv.kind, rv.name = name(cd)
	rt, err := router.New(provider, router.Deps{Client: c})
	if err != nil {
		rv.err = shortError(err)
		return rv
	}
	var t router.Target
	if base == flaggerv1beta1.ProviderKubernetes {
		if primarySvc == nil || len(primarySvc.Spec.Selector) != 1 {
			rv.err = "the primary Service is missing, so the split cannot be told"
			return rv
		}
		for k, val := range primarySvc.Spec.Selector {
			t.SelectorLabel, t.SelectorValue = k, strings.TrimSuffix(val, "-primary")
		}
	}
	routes, err := rt.GetRoutes(ctx, cd, t)
	switch {
	case err == nil:
		rv.routes = &routes
	case apierrors.IsNotFound(err):
		rv.err = "not created yet"
	case meta.IsNoMatchError(err):
		rv.err = fmt.Sprintf("the %s kind is not installed in this cluster", rv.kind)
	default:
		rv.err = shortError(err)
	}
	return rv
}

// readEvents lists the Canary's events, oldest first.
func readEvents(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary) ([]corev1.Event, string) {
	list, err := listEvents(ctx, c, cd)
	if err != nil {
		return nil, shortError(err)
	}
	return list.Items, ""
}

// eventsOf selects the events of one Canary.
func eventsOf(cd *flaggerv1beta1.Canary) []client.ListOption {
	sel := fields.OneTermEqualSelector("involvedObject.uid", string(cd.UID))
	return []client.ListOption{client.InNamespace(cd.Namespace), client.MatchingFieldsSelector{Selector: sel}}
}

// listEvents lists the Canary's events, oldest first.
func listEvents(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary) (*corev1.EventList, error) {
	var list corev1.EventList
	if err := c.List(ctx, &list, eventsOf(cd)...); err != nil {
		return nil, err
	}
	slices.SortStableFunc(list.Items, func(x, y corev1.Event) int { return eventTime(x).Compare(eventTime(y)) })
	return &list, nil
}

// eventTime is when an event last happened.
func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

// hookViews pairs every webhook with its newest result, and every gate
// webhook with its newest "no".
func hookViews(cd *flaggerv1beta1.Canary, events []corev1.Event) []hookView {
	if cd.Spec.Analysis == nil {
		return nil
	}
	var out []hookView
	for _, h := range cd.Spec.Analysis.Webhooks {
		hv := hookView{hook: h}
		for i := len(cd.Status.Analysis) - 1; i >= 0; i-- {
			if r := cd.Status.Analysis[i]; r.Kind == flaggerv1beta1.CheckWebhook && r.Name == h.Name {
				hv.last = &cd.Status.Analysis[i]
				break
			}
		}
		if isGate(h.EffectiveType()) {
			hv.refusal, hv.refusalTime = gateRefusal(cd, events, h.Name)
		}
		out = append(out, hv)
	}
	return out
}

// isGate reports whether webhooks of a type are gates, asked before a
// stage rather than run as checks.
func isGate(t flaggerv1beta1.HookType) bool {
	switch t {
	case flaggerv1beta1.ConfirmRolloutHook, flaggerv1beta1.ConfirmPromotionHook, flaggerv1beta1.ConfirmTrafficIncreaseHook:
		return true
	}
	return false
}

// gateRefusal finds the newest answer of a gate webhook that kept its gate
// closed. The controller writes it as "webhook <name>: <error>" into the
// Promoted condition (Waiting, WaitingPromotion) and the events.
func gateRefusal(cd *flaggerv1beta1.Canary, events []corev1.Event, name string) (string, time.Time) {
	var texts []string
	var times []time.Time
	if c := condition(cd, flaggerv1beta1.PromotedType); c != nil {
		texts, times = append(texts, c.Message), append(times, c.LastUpdateTime.Time)
	}
	for _, e := range events {
		texts, times = append(texts, e.Message), append(times, eventTime(e))
	}
	best, when := "", time.Time{}
	for i, t := range texts {
		if msg, ok := refusalIn(t, name); ok && !times[i].Before(when) {
			best, when = msg, times[i]
		}
	}
	return best, when
}

// refusalIn cuts the answer of webhook name out of a gate message.
func refusalIn(text, name string) (string, bool) {
	_, after, ok := strings.Cut(text, "webhook "+name+": ")
	if !ok {
		return "", false
	}
	for _, end := range []string{"; open it with:", " (waiting for "} {
		if i := strings.Index(after, end); i >= 0 {
			after = after[:i]
		}
	}
	// The address is the webhook's own: keep the answer.
	if rest, ok := strings.CutPrefix(after, "POST "); ok {
		if _, answer, ok := strings.Cut(rest, ": "); ok {
			after = answer
		}
	}
	return after, true
}

// shortError is an error for a place in the tree.
func shortError(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}
