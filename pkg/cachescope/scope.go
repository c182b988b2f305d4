// Package cachescope decides what the manager's informer cache keeps of
// the objects Sluice watches, so that its memory follows the number of
// Canaries and not the size of the cluster. It is not a stable Go API.
//
// Deployments and DaemonSets are watched cluster-wide (a change to a
// target must wake its Canary, a change to a primary must be seen as
// drift), but only the targets of Canaries and the objects Canaries own
// are kept in full. Every other one is kept as a skeleton: its metadata,
// without annotations, as PartialObjectMetadata. Watch handlers only use
// the metadata; a typed read of a skeleton from the cache fails with a type
// mismatch, and the client from NewClient then reads the object from the
// API server once and keeps that copy. That happens only to a target
// cached before its Canary existed (or before the Canary informer saw it,
// at start-up). The read registers the object as needed, so its next
// change puts it in the cache in full, and the copy is dropped.
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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Scope remembers the targets of the Canaries the cache has seen, and the
// workloads read from the API server while the cache held a skeleton.
type Scope struct {
	mu      sync.RWMutex
	targets map[key]struct{}
	// kept holds the workloads read from the API server while the cache
	// held skeletons of them. Reading one registers it as needed, so the
	// next event about it puts it in the cache in full and the copy is
	// dropped: until then the copy is as current as the cache would be.
	kept map[key]client.Object
}

// key names a workload: its kind, namespace and name.
type key struct{ kind, namespace, name string }

// New returns an empty Scope.
func New() *Scope {
	return &Scope{targets: map[key]struct{}{}, kept: map[key]client.Object{}}
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
		return skeleton("Deployment", o.ObjectMeta), nil
	case *appsv1.DaemonSet:
		o.ManagedFields = nil
		if s.needed("DaemonSet", o) {
			return o, nil
		}
		return skeleton("DaemonSet", o.ObjectMeta), nil
	}
	return in, nil
}

// skeleton is what the cache keeps of a workload Sluice does not use: its
// metadata, without annotations, as PartialObjectMetadata (a fifth of the
// size of an empty Deployment).
func skeleton(kind string, m metav1.ObjectMeta) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: kind},
		ObjectMeta: metav1.ObjectMeta{
			Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
			Generation: m.Generation, CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
			Labels: m.Labels, OwnerReferences: m.OwnerReferences,
		},
	}
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

// NewClient is a client.NewClientFunc for the manager: its reads go to
// the cache as usual, except that a Deployment or DaemonSet the cache
// holds only as a skeleton (or cannot answer for) is read from the API
// server.
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

// scopedClient reads skeletons from the API server.
type scopedClient struct {
	client.Client
	live  client.Reader
	scope *Scope
}

// Get reads obj from the cache. A workload the cache holds as a skeleton
// comes back from it as an error ("cache had type ... PartialObjectMetadata"):
// it is read from the API server once, registered as needed, and served
// from that copy until the cache holds it in full.
func (c *scopedClient) Get(ctx context.Context, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := c.Client.Get(ctx, k, obj, opts...)
	wk, isWorkload := workloadKey(obj, k)
	switch {
	case !isWorkload:
		return err
	case err == nil:
		c.scope.forget(wk)
		return nil
	case apierrors.IsNotFound(err):
		c.scope.forget(wk)
		return err
	}
	if c.scope.fromKept(wk, obj) {
		return nil
	}
	if err := c.live.Get(ctx, k, obj, opts...); err != nil {
		return err
	}
	c.scope.keep(wk, obj)
	return nil
}

// workloadKey is the key of a Deployment or DaemonSet read at k.
func workloadKey(obj client.Object, k client.ObjectKey) (key, bool) {
	switch obj.(type) {
	case *appsv1.Deployment:
		return key{"Deployment", k.Namespace, k.Name}, true
	case *appsv1.DaemonSet:
		return key{"DaemonSet", k.Namespace, k.Name}, true
	}
	return key{}, false
}

// keep registers k as needed and keeps a copy of obj, read from the API
// server.
func (s *Scope) keep(k key, obj client.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets[k] = struct{}{}
	s.kept[k] = obj.DeepCopyObject().(client.Object)
}

// fromKept copies the kept object of k into obj, if there is one.
func (s *Scope) fromKept(k key, obj client.Object) bool {
	s.mu.RLock()
	kept, ok := s.kept[k]
	s.mu.RUnlock()
	if !ok {
		return false
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		kept.(*appsv1.Deployment).DeepCopyInto(o)
	case *appsv1.DaemonSet:
		kept.(*appsv1.DaemonSet).DeepCopyInto(o)
	}
	return true
}

// forget drops the kept copy of k, once the cache answers for it.
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
