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
// API server. That happens only for a target cached before its Canary
// existed (or before the Canary informer saw it, at start-up), until the
// target next changes: from then on the cache holds it in full.
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

// Scope remembers the targets of the Canaries the cache has seen.
type Scope struct {
	mu      sync.RWMutex
	targets map[key]struct{}
}

// key names a workload: its kind, namespace and name.
type key struct{ kind, namespace, name string }

// New returns an empty Scope.
func New() *Scope {
	return &Scope{targets: map[key]struct{}{}}
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
	return &scopedClient{Client: c, live: live}, nil
}

// scopedClient reads skeletons from the API server.
type scopedClient struct {
	client.Client
	live client.Reader
}

// Get reads obj from the cache; a workload the cache holds as a skeleton
// comes back from it as an error ("cache had type ... PartialObjectMetadata"),
// and is read from the API server instead.
func (c *scopedClient) Get(ctx context.Context, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := c.Client.Get(ctx, k, obj, opts...)
	if err == nil || apierrors.IsNotFound(err) || !isWorkload(obj) {
		return err
	}
	return c.live.Get(ctx, k, obj, opts...)
}

// isWorkload reports whether obj is of a kind the cache may hold as a
// skeleton.
func isWorkload(obj client.Object) bool {
	switch obj.(type) {
	case *appsv1.Deployment, *appsv1.DaemonSet:
		return true
	}
	return false
}
