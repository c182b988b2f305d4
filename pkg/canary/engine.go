package canary

import (
	"context"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// kindOps is what differs between workload kinds. The engine does the rest
// (reading, copying, promoting) the same way for every kind.
type kindOps interface {
	// kind is the Kubernetes kind, for messages.
	kind() string
	// newObject returns an empty object of the kind.
	newObject() client.Object
	// podTemplate returns a pointer to the object's pod template.
	podTemplate(obj client.Object) *corev1.PodTemplateSpec
	// selector returns the object's spec.selector.
	selector(obj client.Object) *metav1.LabelSelector
	// setSelector sets the object's spec.selector.
	setSelector(obj client.Object, sel *metav1.LabelSelector)
	// copySpec copies the rollout settings of target into primary, and
	// sets the primary's replicas when replicas is not nil (kinds without
	// replicas ignore it).
	copySpec(primary, target client.Object, replicas *int32)
	// replicas returns spec.replicas, 1 when unset, and 0 for kinds
	// without replicas.
	replicas(obj client.Object) int32
	// state judges the object's readiness with the given threshold.
	state(obj client.Object, threshold int32) WorkloadState
}

// engine implements the kind-independent part of Workload.
type engine struct {
	deps Deps
	ops  kindOps
}

// inputs are what the engine reads about a target before it acts.
type inputs struct {
	target   client.Object
	template *corev1.PodTemplateSpec
	label    string
	value    string
	configs  *configSet
	scaler   *scaler
	revision string
}

// getTarget reads the target from the cache. A missing target is an
// *problem.Problem; any other error is returned wrapped, as transient.
func (e *engine) getTarget(ctx context.Context, cd *flaggerv1beta1.Canary) (client.Object, error) {
	obj := e.ops.newObject()
	name := cd.Spec.TargetRef.Name
	err := e.deps.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return nil, problem.New(problem.TargetNotFound, "%s %s not found in namespace %s: create it or fix spec.targetRef", e.ops.kind(), name, cd.Namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s %s/%s: %w", e.ops.kind(), cd.Namespace, name, err)
	}
	return obj, nil
}

// getPrimary reads <target>-primary from the cache; found is false when it
// does not exist.
func (e *engine) getPrimary(ctx context.Context, cd *flaggerv1beta1.Canary) (obj client.Object, found bool, err error) {
	obj = e.ops.newObject()
	name := PrimaryName(cd.Spec.TargetRef.Name)
	err = e.deps.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s %s/%s: %w", e.ops.kind(), cd.Namespace, name, err)
	}
	return obj, true, nil
}

// selectorLabel returns the first of the -selector-labels in the target's
// selector and its value, or a problem when it has none of them.
func (e *engine) selectorLabel(target client.Object) (label, value string, err error) {
	label, value, ok := findSelectorLabel(e.ops.selector(target), e.deps.Config.SelectorLabels)
	if !ok {
		return "", "", problem.New(problem.SelectorLabelNotFound,
			"%s %s has none of the selector labels %v in spec.selector.matchLabels: add one of them or change the -selector-labels flag",
			e.ops.kind(), target.GetName(), e.deps.Config.SelectorLabels)
	}
	return label, value, nil
}

// read gathers the inputs: the target, its selector label, its autoscaler,
// its tracked configs and its revision.
func (e *engine) read(ctx context.Context, cd *flaggerv1beta1.Canary) (*inputs, error) {
	target, err := e.getTarget(ctx, cd)
	if err != nil {
		return nil, err
	}
	label, value, err := e.selectorLabel(target)
	if err != nil {
		return nil, err
	}
	sc, err := e.readAutoscaler(ctx, cd)
	if err != nil {
		return nil, err
	}
	tmpl := e.ops.podTemplate(target)
	configs, err := e.trackConfigs(ctx, cd, &tmpl.Spec)
	if err != nil {
		return nil, err
	}
	rev, err := Revision(tmpl, configs.checksums())
	if err != nil {
		return nil, fmt.Errorf("computing the revision of %s %s/%s: %w", e.ops.kind(), cd.Namespace, target.GetName(), err)
	}
	return &inputs{target: target, template: tmpl, label: label, value: value, configs: configs, scaler: sc, revision: rev}, nil
}

// Observe implements Workload. A missing primary is not an error: the
// State's Primary then has Exists false and a Message saying so. A missing
// target is a problem, returned with what the primary tells (see
// observePrimaryOnly), so that a release whose target was deleted can still
// be rolled back.
func (e *engine) Observe(ctx context.Context, cd *flaggerv1beta1.Canary) (*State, error) {
	ctx = withCanary(ctx, cd)
	in, err := e.read(ctx, cd)
	if problem.Is(err, problem.TargetNotFound) {
		st, perr := e.observePrimaryOnly(ctx, cd)
		if perr != nil {
			return nil, perr
		}
		return st, err
	}
	if err != nil {
		return nil, err
	}
	primary, found, err := e.getPrimary(ctx, cd)
	if err != nil {
		return nil, err
	}
	st := &State{
		Target:         e.ops.state(in.target, ReadyThreshold(cd, false)),
		Revision:       in.revision,
		TrackedConfigs: in.configs.checksums(),
		SelectorLabel:  in.label,
		SelectorValue:  in.value,
		Containers:     in.template.Spec.Containers,
	}
	st.Target.Revision = in.revision
	if found {
		st.Primary = e.ops.state(primary, ReadyThreshold(cd, true))
		st.Primary.Revision = primary.GetAnnotations()[RevisionAnnotation]
		if st.Primary.Revision == "" {
			// A primary Sluice did not write (Flagger's, at a takeover):
			// it runs the target's revision when it holds what a promotion
			// of the target would write.
			if st.Primary.Revision, err = e.revisionInPrimary(ctx, cd, in, primary); err != nil {
				return nil, err
			}
		}
	} else {
		st.Primary = missingState(e.ops.kind(), PrimaryName(in.target.GetName()))
	}
	if in.scaler != nil {
		st.AutoscalerDesired = in.scaler.desired
	}
	if st.Baseline, err = e.observeBaseline(ctx, cd); err != nil {
		return st, err
	}
	return st, nil
}

// EnsurePrimary implements Workload.
func (e *engine) EnsurePrimary(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	ctx = withCanary(ctx, cd)
	in, err := e.read(ctx, cd)
	if err != nil {
		return err
	}
	if err := e.syncConfigCopies(ctx, cd, in.configs, false); err != nil {
		return err
	}
	_, found, err := e.getPrimary(ctx, cd)
	if err != nil {
		return err
	}
	if !found {
		if err := e.createPrimary(ctx, cd, in); err != nil {
			return err
		}
	}
	return e.syncAutoscaler(ctx, cd, in.scaler, false)
}

// Promote implements Workload. It writes the primary only when its pod
// template, rollout settings, replicas, labels or annotations differ from
// the target's, or when the target's revision differs from the one recorded
// in RevisionAnnotation; a template or revision change also sets a new
// FlaggerIDAnnotation, which rolls the primary's pods.
func (e *engine) Promote(ctx context.Context, cd *flaggerv1beta1.Canary, revision string) error {
	ctx = withCanary(ctx, cd)
	in, err := e.read(ctx, cd)
	if err != nil {
		return err
	}
	if in.revision != revision {
		// What is copied below is what was read above, so this check is
		// what guarantees that the primary receives the analysed revision.
		return fmt.Errorf("promoting %s %s/%s: %w: analysed %s, the target holds %s",
			e.ops.kind(), cd.Namespace, cd.Spec.TargetRef.Name, ErrRevisionChanged, revision, in.revision)
	}
	// Configs first: the primary's new pods must find the new data.
	if err := e.syncConfigCopies(ctx, cd, in.configs, true); err != nil {
		return err
	}
	primary, found, err := e.getPrimary(ctx, cd)
	if err != nil {
		return err
	}
	if found {
		err = e.promotePrimary(ctx, in, primary)
	} else {
		err = e.createPrimary(ctx, cd, in)
	}
	if err != nil {
		return err
	}
	return e.syncAutoscaler(ctx, cd, in.scaler, true)
}

// createPrimary creates <target>-primary as a copy of the target.
func (e *engine) createPrimary(ctx context.Context, cd *flaggerv1beta1.Canary, in *inputs) error {
	prefixes := e.deps.Config.IncludeLabelPrefix
	obj := e.ops.newObject()
	obj.SetName(PrimaryName(in.target.GetName()))
	obj.SetNamespace(cd.Namespace)
	obj.SetLabels(primaryLabels(in.target.GetLabels(), prefixes, in.label, in.value))
	annotations := filterMeta(in.target.GetAnnotations(), prefixes)
	annotations[RevisionAnnotation] = in.revision
	obj.SetAnnotations(annotations)
	e.ops.setSelector(obj, primarySelector(e.ops.selector(in.target), in.label, in.value))
	tmpl := primaryTemplate(in.template, in.label, in.value, in.configs)
	tmpl.Annotations = withFlaggerID(tmpl.Annotations, newFlaggerID())
	*e.ops.podTemplate(obj) = *tmpl
	e.ops.copySpec(obj, in.target, ptr.To(e.createReplicas(in)))
	return createOwned(ctx, e.deps.Client, cd, obj, e.ops.kind())
}

// createReplicas is the replica count of a new primary: the target's; or,
// when the target is already scaled to zero, the primary autoscaler's
// minimum, else 1.
func (e *engine) createReplicas(in *inputs) int32 {
	if n := e.ops.replicas(in.target); n > 0 {
		return n
	}
	if in.scaler != nil {
		return max(in.scaler.primaryMin, 1)
	}
	return 1
}

// promotePrimary copies the target into an existing primary. The
// selector, which the API server does not let change, is left alone.
func (e *engine) promotePrimary(ctx context.Context, in *inputs, primary client.Object) error {
	prefixes := e.deps.Config.IncludeLabelPrefix
	orig := primary.DeepCopyObject().(client.Object)
	cur := e.ops.podTemplate(primary)
	want := primaryTemplate(in.template, in.label, in.value, in.configs)
	id := cur.Annotations[FlaggerIDAnnotation]
	roll := primary.GetAnnotations()[RevisionAnnotation] != in.revision || !sameTemplate(cur, want)
	if roll || id == "" {
		id = newFlaggerID()
	}
	want.Annotations = withFlaggerID(want.Annotations, id)
	*cur = *want

	primary.SetLabels(mergeMeta(primary.GetLabels(), primaryLabels(in.target.GetLabels(), prefixes, in.label, in.value)))
	annotations := mergeMeta(primary.GetAnnotations(), filterMeta(in.target.GetAnnotations(), prefixes))
	annotations[RevisionAnnotation] = in.revision
	primary.SetAnnotations(annotations)

	var replicas *int32
	if n := e.ops.replicas(in.target); in.scaler == nil && n > 0 {
		replicas = &n
	}
	e.ops.copySpec(primary, in.target, replicas)

	patched, err := patchIfChanged(ctx, e.deps.Client, orig, primary, e.ops.kind(), client.MergeFromWithOptimisticLock{})
	if err != nil {
		return err
	}
	if patched && roll {
		log.FromContext(ctx).Info("promoted", "kind", e.ops.kind(), "name", primary.GetName(), "revision", in.revision)
	}
	return nil
}

// sameTemplate compares two pod templates, ignoring FlaggerIDAnnotation.
func sameTemplate(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Annotations, FlaggerIDAnnotation)
	delete(b.Annotations, FlaggerIDAnnotation)
	return apiequality.Semantic.DeepEqual(a, b)
}

// mergeMeta returns a copy of dst with the entries of src added or
// replaced. Entries of dst that src lacks are kept: other controllers and
// people may have put them there.
func mergeMeta(dst, src map[string]string) map[string]string {
	out := maps.Clone(dst)
	if out == nil {
		out = make(map[string]string, len(src))
	}
	maps.Copy(out, src)
	return out
}

// withCanary adds the Canary to the context's logger.
func withCanary(ctx context.Context, cd *flaggerv1beta1.Canary) context.Context {
	return log.IntoContext(ctx, log.FromContext(ctx).WithValues("canary", klog.KObj(cd)))
}

// revisionInPrimary returns the target's revision when the primary runs
// it: its pod template is the copy of the target's that Promote would
// write (flagger-id aside) and every tracked config's <name>-primary copy
// holds the target config's data. Otherwise it returns "".
func (e *engine) revisionInPrimary(ctx context.Context, cd *flaggerv1beta1.Canary, in *inputs, primary client.Object) (string, error) {
	if !sameTemplate(e.ops.podTemplate(primary), primaryTemplate(in.template, in.label, in.value, in.configs)) {
		return "", nil
	}
	for _, t := range in.configs.tracked {
		name := PrimaryName(t.obj.GetName())
		cur, err := e.readConfig(ctx, cd.Namespace, configRef{t.ref.kind, name})
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("reading %s %s/%s: %w", kindName(t.ref.kind), cd.Namespace, name, err)
		}
		var sum string
		switch c := cur.(type) {
		case *corev1.ConfigMap:
			sum = checksum(c.Data, c.BinaryData)
		case *corev1.Secret:
			sum = checksum(nil, c.Data)
		}
		if sum != t.checksum {
			return "", nil
		}
	}
	return in.revision, nil
}

// observePrimaryOnly reports the primary of a Canary whose target is gone:
// the selector and the containers come from the primary, whose selector
// label value is the target's with -primary appended. It returns nil when
// there is no primary either, or it has none of the selector labels.
func (e *engine) observePrimaryOnly(ctx context.Context, cd *flaggerv1beta1.Canary) (*State, error) {
	primary, found, err := e.getPrimary(ctx, cd)
	if err != nil || !found {
		return nil, err
	}
	label, value, ok := findSelectorLabel(e.ops.selector(primary), e.deps.Config.SelectorLabels)
	if !ok || !strings.HasSuffix(value, primarySuffix) {
		return nil, nil
	}
	st := &State{
		Target:        missingState(e.ops.kind(), cd.Spec.TargetRef.Name),
		Primary:       e.ops.state(primary, ReadyThreshold(cd, true)),
		SelectorLabel: label,
		SelectorValue: strings.TrimSuffix(value, primarySuffix),
		Containers:    e.ops.podTemplate(primary).Spec.Containers,
	}
	st.Primary.Revision = primary.GetAnnotations()[RevisionAnnotation]
	// The missing target is the problem to report; a baseline of someone
	// else's is only left out.
	if st.Baseline, err = e.observeBaseline(ctx, cd); err != nil && !problem.Is(err, problem.NotOwned) {
		return nil, err
	}
	return st, nil
}
