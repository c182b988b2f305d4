// Package cachescope decides what the manager's informer cache keeps of
// the objects Sluice watches, so that its memory follows the number of
// Canaries and not the size of the cluster. It is not a stable Go API.
//
// Deployments and DaemonSets are watched cluster-wide (a change to a
// target must wake its Canary, a change to a primary must be seen as
// drift), but only the targets of Canaries and the objects Canaries own
// are kept in full. Every other one is kept as a skeleton: its metadata
// without annotations, and an empty spec and status. A skeleton has no
// containers, which no real workload lacks, and that is how a read tells
// one. The client from NewClient reads a skeleton's object from the API
// server instead, and keeps that copy until the cached one changes, so a
// Canary created after its target was cached costs one GET, not one per
// reconcile. Once the target changes, the cache holds it in full.
//
// The ConfigMaps watched by metadata (the tracked configs) are kept as
// name, namespace, UID and resourceVersion only.
package cachescope

import (
	"context"
	"maps"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Scope remembers the targets of the Canaries the cache has seen, and the
// full copies of targets read while their cached copy was a skeleton.
type Scope struct {
	mu      sync.RWMutex
	targets map[key]struct{}
	kept    map[key]keptObject
}

// key names a workload: its kind, namespace and name.
type key struct{ kind, namespace, name string }

// keptObject is a workload read from the API server while the cache held
// a skeleton of resourceVersion cachedRV.
type keptObject struct {
	cachedRV string
	obj      client.Object
}

// New returns an empty Scope.
func New() *Scope {
	return &Scope{targets: map[key]struct{}{}, kept: map[key]keptObject{}}
}

// Options returns base with the transforms of the scope: Canaries
// register their targets as the cache receives them, Deployments and
// DaemonSets that are neither a target nor owned by a Canary are cut to a
// skeleton, and ConfigMap metadata to its identity. The other kinds keep
// base's DefaultTransform.
func (s *Scope) Options(base cache.Options) cache.Options {
	out := base
	out.ByObject = maps.Clone(base.ByObject)
	if out.ByObject == nil {
		out.ByObject = map[client.Object]cache.ByObject{}
	}
	out.ByObject[&flaggerv1beta1.Canary{}] = cache.ByObject{Transform: s.transformCanary}
	out.ByObject[&appsv1.Deployment{}] = cache.ByObject{Transform: s.transformWorkload}
	out.ByObject[&appsv1.DaemonSet{}] = cache.ByObject{Transform: s.transformWorkload}
	cm := &metav1.PartialObjectMetadata{}
	cm.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	out.ByObject[cm] = cache.ByObject{Transform: transformConfigMetadata}
	return out
}

// transformCanary drops the managed fields and registers the Canary's
// target, before the Canary reaches the cache and wakes its reconcile.
func (s *Scope) transformCanary(in any) (any, error) {
	cd, ok := in.(*flaggerv1beta1.Canary)
	if !ok {
		return in, nil
	}
	cd.ManagedFields = nil
	switch kind := cd.Spec.TargetRef.Kind; kind {
	case "Deployment", "DaemonSet":
		k := key{kind, cd.Namespace, cd.Spec.TargetRef.Name}
		s.mu.RLock()
		_, known := s.targets[k]
		s.mu.RUnlock()
		if !known {
			s.mu.Lock()
			s.targets[k] = struct{}{}
			s.mu.Unlock()
		}
	}
	return cd, nil
}

// transformWorkload keeps a Deployment or DaemonSet in full when Sluice
// needs it, else a skeleton of it.
func (s *Scope) transformWorkload(in any) (any, error) {
	switch o := in.(type) {
	case *appsv1.Deployment:
		o.ManagedFields = nil
		if s.needed("Deployment", o) {
			return o, nil
		}
		return &appsv1.Deployment{TypeMeta: o.TypeMeta, ObjectMeta: skeletonMeta(o.ObjectMeta)}, nil
	case *appsv1.DaemonSet:
		o.ManagedFields = nil
		if s.needed("DaemonSet", o) {
			return o, nil
		}
		return &appsv1.DaemonSet{TypeMeta: o.TypeMeta, ObjectMeta: skeletonMeta(o.ObjectMeta)}, nil
	}
	return in, nil
}

// needed reports whether a workload is a Canary's target or one of its
// copies: owned by a Canary, or named like a primary (which Sluice may
// have to take over).
func (s *Scope) needed(kind string, o metav1.Object) bool {
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind == "Canary" && strings.HasPrefix(ref.APIVersion, flaggerv1beta1.GroupVersion.Group+"/") {
			return true
		}
	}
	if strings.HasSuffix(o.GetName(), "-primary") {
		return true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.targets[key{kind, o.GetNamespace(), o.GetName()}]
	return ok
}

// skeletonMeta is what a skeleton keeps of the metadata: enough to name,
// own, select and order the object.
func skeletonMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
		Labels: m.Labels, OwnerReferences: m.OwnerReferences,
	}
}

// transformConfigMetadata keeps of a ConfigMap's metadata what the
// tracked-config watch uses: its identity and resourceVersion.
func transformConfigMetadata(in any) (any, error) {
	pm, ok := in.(*metav1.PartialObjectMetadata)
	if !ok {
		return in, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: pm.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: pm.Name, Namespace: pm.Namespace, UID: pm.UID, ResourceVersion: pm.ResourceVersion,
		DeletionTimestamp: pm.DeletionTimestamp,
	}}, nil
}

// IsSkeleton reports whether obj is a workload the cache keeps as a
// skeleton: a Deployment or DaemonSet without containers.
func IsSkeleton(obj client.Object) bool {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return len(o.Spec.Template.Spec.Containers) == 0
	case *appsv1.DaemonSet:
		return len(o.Spec.Template.Spec.Containers) == 0
	}
	return false
}

// NewClient is a client.NewClientFunc for the manager: its reads go to
// the cache as usual, except that a skeleton is replaced by the object
// read from the API server.
func (s *Scope) NewClient(config *rest.Config, opts client.Options) (client.Client, error) {
	c, err := client.New(config, opts)
	if err != nil {
		return nil, err
	}
	live, err := client.New(config, client.Options{Scheme: opts.Scheme, Mapper: opts.Mapper, HTTPClient: opts.HTTPClient})
	if err != nil {
		return nil, err
	}
	return &scopedClient{Client: c, live: live, scope: s}, nil
}

// scopedClient fills in skeletons on Get.
type scopedClient struct {
	client.Client
	live  client.Reader
	scope *Scope
}

// Get reads obj from the cache and, when the cache holds a skeleton of
// it, from the kept copy or the API server.
func (c *scopedClient) Get(ctx context.Context, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Client.Get(ctx, k, obj, opts...); err != nil {
		return err
	}
	kk, ok := workloadKey(obj)
	if !ok {
		return nil
	}
	if !IsSkeleton(obj) {
		c.scope.forget(kk)
		return nil
	}
	return c.scope.fill(ctx, c.live, kk, obj)
}

// workloadKey is the key of a Deployment or DaemonSet.
func workloadKey(obj client.Object) (key, bool) {
	switch obj.(type) {
	case *appsv1.Deployment:
		return key{"Deployment", obj.GetNamespace(), obj.GetName()}, true
	case *appsv1.DaemonSet:
		return key{"DaemonSet", obj.GetNamespace(), obj.GetName()}, true
	}
	return key{}, false
}

// forget drops the kept copy of k, once the cache holds it in full.
func (s *Scope) forget(k key) {
	s.mu.RLock()
	_, ok := s.kept[k]
	s.mu.RUnlock()
	if ok {
		s.mu.Lock()
		delete(s.kept, k)
		s.mu.Unlock()
	}
}

// fill replaces the skeleton obj by the kept copy, if it was read while
// the cache held this very skeleton, else by the object live returns.
func (s *Scope) fill(ctx context.Context, live client.Reader, k key, obj client.Object) error {
	cachedRV := obj.GetResourceVersion()
	s.mu.RLock()
	kept, ok := s.kept[k]
	s.mu.RUnlock()
	if !ok || kept.cachedRV != cachedRV {
		fresh := obj.DeepCopyObject().(client.Object)
		if err := live.Get(ctx, client.ObjectKey{Namespace: k.namespace, Name: k.name}, fresh); err != nil {
			return err
		}
		kept = keptObject{cachedRV: cachedRV, obj: fresh}
		s.mu.Lock()
		s.kept[k] = kept
		s.mu.Unlock()
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		kept.obj.(*appsv1.Deployment).DeepCopyInto(o)
	case *appsv1.DaemonSet:
		kept.obj.(*appsv1.DaemonSet).DeepCopyInto(o)
	}
	return nil
}
