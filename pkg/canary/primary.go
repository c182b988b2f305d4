package canary

import (
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
)

// Annotations, labels and node selectors that Sluice reads or writes on the
// workloads and their configs.
const (
	// FlaggerIDAnnotation is the pod template annotation of the primary
	// that gets a fresh random UUID whenever the primary is created or
	// promoted, so that its pods roll even when only a config changed.
	FlaggerIDAnnotation = "flagger-id"

	// ConfigTrackingAnnotation set to ConfigTrackingDisabled on a ConfigMap
	// or Secret opts it out of tracking: the primary then uses the original
	// object, and its data is not part of the revision.
	ConfigTrackingAnnotation = "flagger.app/config-tracking"
	// ConfigTrackingDisabled is the ConfigTrackingAnnotation value that
	// opts an object out of tracking.
	ConfigTrackingDisabled = "disabled"

	// ScaleToZeroNodeSelector is the node selector key, with value "true",
	// that parks a DaemonSet target: no node carries the label, so no pod
	// runs. It is never copied to the primary and does not count in the
	// revision.
	ScaleToZeroNodeSelector = "flagger.app/scale-to-zero"

	// RevisionAnnotation on the primary workload records the target
	// revision (State.Revision) last copied into it. Promote uses it to roll
	// the primary again after a crash between updating the config copies
	// and the primary; Observe reports it as State.Primary.Revision.
	RevisionAnnotation = "sluice.flagger.app/revision"

	// primarySuffix is appended to names and to the selector label value.
	primarySuffix = "-primary"

	// fluxMarker marks Flux's ownership labels and annotations, which are
	// never copied: Flux would otherwise garbage collect the copies.
	fluxMarker = "toolkit.fluxcd.io"
)

// controllerMetaPrefixes are label and annotation keys that Kubernetes
// controllers and kubectl maintain on each object themselves. They are
// never copied to a primary, even with "*", because the copy would fight
// the controller and make every promotion a write.
var controllerMetaPrefixes = []string{
	"deployment.kubernetes.io/",
	"deprecated.daemonset.template.generation",
	"kubectl.kubernetes.io/last-applied-configuration",
}

// filterMeta returns the labels or annotations of m whose key starts with
// one of prefixes ("*" matches every key; an empty prefix matches none),
// without Flux's and the controllers' own keys. It never returns nil.
func filterMeta(m map[string]string, prefixes []string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if strings.Contains(k, fluxMarker) || hasAnyPrefix(k, controllerMetaPrefixes) {
			continue
		}
		for _, p := range prefixes {
			if p == "*" || (p != "" && strings.HasPrefix(k, p)) {
				out[k] = v
				break
			}
		}
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// findSelectorLabel returns the first of candidates present in the
// selector's matchLabels, and its value.
func findSelectorLabel(sel *metav1.LabelSelector, candidates []string) (string, string, bool) {
	if sel == nil {
		return "", "", false
	}
	for _, l := range candidates {
		if v, ok := sel.MatchLabels[l]; ok {
			return l, v, true
		}
	}
	return "", "", false
}

// primarySelector returns a copy of the target's selector with the
// selector label's value rewritten to <value>-primary.
func primarySelector(sel *metav1.LabelSelector, label, value string) *metav1.LabelSelector {
	out := sel.DeepCopy()
	if out == nil {
		out = &metav1.LabelSelector{}
	}
	if out.MatchLabels == nil {
		out.MatchLabels = map[string]string{}
	}
	out.MatchLabels[label] = value + primarySuffix
	return out
}

// primaryLabels returns the primary workload's labels: the target's,
// filtered by prefix, with the selector label set to <value>-primary.
func primaryLabels(target map[string]string, prefixes []string, label, value string) map[string]string {
	out := filterMeta(target, prefixes)
	out[label] = value + primarySuffix
	return out
}

// primaryTemplate returns the pod template of the primary: the target's
// template with the selector label rewritten, the parking node selector
// removed, tracked configs renamed to their copies and the pod
// (anti-)affinity and topology spread selectors that point at the target's
// pods pointed at the primary's. It carries no FlaggerIDAnnotation.
func primaryTemplate(target *corev1.PodTemplateSpec, label, value string, configs *configSet) *corev1.PodTemplateSpec {
	t := target.DeepCopy()
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Labels[label] = value + primarySuffix
	delete(t.Annotations, FlaggerIDAnnotation)
	unpark(&t.Spec)
	configs.rename(&t.Spec)

	retargetPodSelectors(&t.Spec, label, value, value+primarySuffix)
	return t
}

// retargetPodSelectors points the pod (anti-)affinity and topology spread
// selectors of a pod spec that select pods by label=from at label=to.
func retargetPodSelectors(spec *corev1.PodSpec, label, from, to string) {
	if a := spec.Affinity; a != nil {
		if pa := a.PodAffinity; pa != nil {
			rewriteAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, label, from, to)
		}
		if pa := a.PodAntiAffinity; pa != nil {
			rewriteAffinityTerms(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, label, from, to)
		}
	}
	for i := range spec.TopologySpreadConstraints {
		rewriteSelectorValue(spec.TopologySpreadConstraints[i].LabelSelector, label, from, to)
	}
}

// withFlaggerID returns the annotations with FlaggerIDAnnotation set to id.
func withFlaggerID(annotations map[string]string, id string) map[string]string {
	out := maps.Clone(annotations)
	if out == nil {
		out = map[string]string{}
	}
	out[FlaggerIDAnnotation] = id
	return out
}

// newFlaggerID returns a fresh random value for FlaggerIDAnnotation.
func newFlaggerID() string { return string(uuid.NewUUID()) }

// unpark removes the parking node selector from a pod spec, leaving nil
// rather than an empty map so that parked and unparked specs compare equal.
func unpark(spec *corev1.PodSpec) {
	delete(spec.NodeSelector, ScaleToZeroNodeSelector)
	if len(spec.NodeSelector) == 0 {
		spec.NodeSelector = nil
	}
}

func rewriteAffinityTerms(required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm, label, from, to string) {
	for i := range required {
		rewriteSelectorValue(required[i].LabelSelector, label, from, to)
	}
	for i := range preferred {
		rewriteSelectorValue(preferred[i].PodAffinityTerm.LabelSelector, label, from, to)
	}
}

// rewriteSelectorValue points a pod label selector that selects pods by
// label=from (the target's, for the primary) at label=to instead.
func rewriteSelectorValue(sel *metav1.LabelSelector, label, from, to string) {
	if sel == nil {
		return
	}
	if v, ok := sel.MatchLabels[label]; ok && v == from {
		sel.MatchLabels[label] = to
	}
	for i := range sel.MatchExpressions {
		e := &sel.MatchExpressions[i]
		if e.Key != label {
			continue
		}
		for j := range e.Values {
			if e.Values[j] == from {
				e.Values[j] = to
			}
		}
	}
}
