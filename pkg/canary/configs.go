package canary

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// Kinds of tracked configs, as they appear in State.TrackedConfigs keys.
const (
	configMapKind = "configmap"
	secretKind    = "secret"
)

// trackedSecretTypes are the Secret types that are copied for the primary.
// Other types (service account tokens, registry credentials, ...) are
// shared by the target and the primary.
var trackedSecretTypes = map[corev1.SecretType]bool{
	corev1.SecretTypeOpaque:    true,
	corev1.SecretTypeBasicAuth: true,
	corev1.SecretTypeSSHAuth:   true,
	corev1.SecretTypeTLS:       true,
}

// configRef names a ConfigMap or Secret that a pod spec uses.
type configRef struct {
	kind string // configMapKind or secretKind
	name string
}

func (r configRef) key() string { return r.kind + "/" + r.name }

// trackedConfig is a ConfigMap or Secret the primary gets a copy of.
type trackedConfig struct {
	ref      configRef
	obj      client.Object // *corev1.ConfigMap or *corev1.Secret
	checksum string
}

// configSet is the result of config tracking for one target.
type configSet struct {
	// tracked is sorted by key.
	tracked []trackedConfig
}

// checksums returns the State.TrackedConfigs map, or nil when nothing is
// tracked.
func (s *configSet) checksums() map[string]string {
	if s == nil || len(s.tracked) == 0 {
		return nil
	}
	out := make(map[string]string, len(s.tracked))
	for _, t := range s.tracked {
		out[t.ref.key()] = t.checksum
	}
	return out
}

// has reports whether the named config is tracked.
func (s *configSet) has(kind, name string) bool {
	if s == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(s.tracked, configRef{kind, name}.key(), func(t trackedConfig, key string) int {
		return cmp.Compare(t.ref.key(), key)
	})
	return found
}

// rename points the references to tracked configs in spec at their
// <name>-primary copies. Untracked references are left alone.
func (s *configSet) rename(spec *corev1.PodSpec) {
	visitConfigRefs(spec, func(kind string, name *string, _ *bool) {
		if s.has(kind, *name) {
			*name = PrimaryName(*name)
		}
	})
}

// visitConfigRefs calls fn for every ConfigMap and Secret reference in the
// volumes and in the env and envFrom of the containers and init containers
// of spec, with a pointer to the name (which fn may change) and the
// reference's optional flag.
func visitConfigRefs(spec *corev1.PodSpec, fn func(kind string, name *string, optional *bool)) {
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if v.ConfigMap != nil {
			fn(configMapKind, &v.ConfigMap.Name, v.ConfigMap.Optional)
		}
		if v.Secret != nil {
			fn(secretKind, &v.Secret.SecretName, v.Secret.Optional)
		}
		if v.Projected == nil {
			continue
		}
		for j := range v.Projected.Sources {
			src := &v.Projected.Sources[j]
			if src.ConfigMap != nil {
				fn(configMapKind, &src.ConfigMap.Name, src.ConfigMap.Optional)
			}
			if src.Secret != nil {
				fn(secretKind, &src.Secret.Name, src.Secret.Optional)
			}
		}
	}
	for _, containers := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range containers {
			visitContainerRefs(&containers[i], fn)
		}
	}
}

func visitContainerRefs(c *corev1.Container, fn func(kind string, name *string, optional *bool)) {
	for i := range c.EnvFrom {
		e := &c.EnvFrom[i]
		if e.ConfigMapRef != nil {
			fn(configMapKind, &e.ConfigMapRef.Name, e.ConfigMapRef.Optional)
		}
		if e.SecretRef != nil {
			fn(secretKind, &e.SecretRef.Name, e.SecretRef.Optional)
		}
	}
	for i := range c.Env {
		vf := c.Env[i].ValueFrom
		if vf == nil {
			continue
		}
		if vf.ConfigMapKeyRef != nil {
			fn(configMapKind, &vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Optional)
		}
		if vf.SecretKeyRef != nil {
			fn(secretKind, &vf.SecretKeyRef.Name, vf.SecretKeyRef.Optional)
		}
	}
}

// configRefs returns the distinct configs that spec uses, sorted, each
// with whether every reference to it is optional.
func configRefs(spec *corev1.PodSpec) ([]configRef, map[configRef]bool) {
	optional := map[configRef]bool{}
	visitConfigRefs(spec, func(kind string, name *string, opt *bool) {
		if *name == "" {
			return
		}
		ref := configRef{kind, *name}
		isOpt := opt != nil && *opt
		if prev, seen := optional[ref]; seen {
			isOpt = isOpt && prev
		}
		optional[ref] = isOpt
	})
	refs := slices.SortedFunc(maps.Keys(optional), func(a, b configRef) int {
		return cmp.Compare(a.key(), b.key())
	})
	return refs, optional
}

// trackConfigs reads, with the direct Reader, each config the target's pod
// spec uses once and returns the ones to copy. A missing config is skipped
// when every reference to it is optional and is an *problem.Problem otherwise.
func (e *engine) trackConfigs(ctx context.Context, cd *flaggerv1beta1.Canary, spec *corev1.PodSpec) (*configSet, error) {
	set := &configSet{}
	if !e.deps.Config.ConfigTracking {
		return set, nil
	}
	logger := log.FromContext(ctx)
	refs, optional := configRefs(spec)
	for _, ref := range refs {
		obj, err := e.readConfig(ctx, cd.Namespace, ref)
		if apierrors.IsNotFound(err) {
			if optional[ref] {
				logger.V(1).Info("optional config not found, not tracked", "config", ref.key())
				continue
			}
			return nil, problem.New(problem.ConfigNotFound, "%s %s referenced by %s %s not found in namespace %s: create it or mark the reference optional",
				kindName(ref.kind), ref.name, cd.Spec.TargetRef.Kind, cd.Spec.TargetRef.Name, cd.Namespace)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s %s/%s: %w", kindName(ref.kind), cd.Namespace, ref.name, err)
		}
		if obj.GetAnnotations()[ConfigTrackingAnnotation] == ConfigTrackingDisabled {
			continue
		}
		var sum string
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			sum = checksum(o.Data, o.BinaryData)
		case *corev1.Secret:
			if !trackedSecretTypes[o.Type] {
				continue
			}
			sum = checksum(nil, o.Data)
		}
		set.tracked = append(set.tracked, trackedConfig{ref: ref, obj: obj, checksum: sum})
	}
	return set, nil
}

func (e *engine) readConfig(ctx context.Context, namespace string, ref configRef) (client.Object, error) {
	var obj client.Object = &corev1.Secret{}
	if ref.kind == configMapKind {
		if e.deps.Configs != nil {
			return e.deps.Configs.get(ctx, e.deps.Client, e.deps.Reader, client.ObjectKey{Namespace: namespace, Name: ref.name})
		}
		obj = &corev1.ConfigMap{}
	}
	err := e.deps.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.name}, obj)
	return obj, err
}

func kindName(kind string) string {
	if kind == configMapKind {
		return "ConfigMap"
	}
	return "Secret"
}

// checksum returns the first 16 hex digits of a SHA-256 over the keys and
// values of data and binary in key order.
func checksum(data map[string]string, binary map[string][]byte) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(data)) {
		writeField(h, "d", k, []byte(data[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(binary)) {
		writeField(h, "b", k, binary[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// writeField writes a length-prefixed key and value, so that no two
// different maps produce the same byte stream.
func writeField(h hash.Hash, section, key string, value []byte) {
	_, _ = fmt.Fprintf(h, "%s%d:%s%d:", section, len(key), key, len(value))
	_, _ = h.Write(value)
}

// primaryConfig returns the <name>-primary copy of a tracked config.
func (e *engine) primaryConfig(t trackedConfig) client.Object {
	meta := metav1.ObjectMeta{
		Name:        PrimaryName(t.obj.GetName()),
		Namespace:   t.obj.GetNamespace(),
		Labels:      filterMeta(t.obj.GetLabels(), e.deps.Config.IncludeLabelPrefix),
		Annotations: filterMeta(t.obj.GetAnnotations(), e.deps.Config.IncludeLabelPrefix),
	}
	switch o := t.obj.(type) {
	case *corev1.ConfigMap:
		return &corev1.ConfigMap{ObjectMeta: meta, Data: o.Data, BinaryData: o.BinaryData}
	case *corev1.Secret:
		return &corev1.Secret{ObjectMeta: meta, Type: o.Type, Data: o.Data}
	}
	return nil
}

// syncConfigCopies creates the missing <name>-primary copies of the
// tracked configs and, when update is set, brings the existing ones to the
// target configs' data and adds their labels and annotations.
func (e *engine) syncConfigCopies(ctx context.Context, cd *flaggerv1beta1.Canary, set *configSet, update bool) error {
	for _, t := range set.tracked {
		want := e.primaryConfig(t)
		cur, err := e.readConfig(ctx, cd.Namespace, configRef{t.ref.kind, want.GetName()})
		if apierrors.IsNotFound(err) {
			if err := createOwned(ctx, e.deps.Client, cd, want, kindName(t.ref.kind)); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s %s/%s: %w", kindName(t.ref.kind), cd.Namespace, want.GetName(), err)
		}
		if !update {
			continue
		}
		orig := cur.DeepCopyObject().(client.Object)
		cur.SetLabels(mergeMeta(cur.GetLabels(), want.GetLabels()))
		cur.SetAnnotations(mergeMeta(cur.GetAnnotations(), want.GetAnnotations()))
		switch c := cur.(type) {
		case *corev1.ConfigMap:
			w := want.(*corev1.ConfigMap)
			c.Data, c.BinaryData = w.Data, w.BinaryData
		case *corev1.Secret:
			c.Data = want.(*corev1.Secret).Data
		}
		if _, err := patchIfChanged(ctx, e.deps.Client, orig, cur, kindName(t.ref.kind)); err != nil {
			return err
		}
	}
	return nil
}
