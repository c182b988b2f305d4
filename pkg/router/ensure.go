package router

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// FieldOwner is the field manager name of Sluice's writes. SetMetadata
// reads it back from the objects' managedFields to know which labels and
// annotations Sluice set earlier.
const FieldOwner = "sluice"

// MutateFunc sets the fields Sluice manages onto the object passed to
// Ensure. The object holds the live state when it exists, so the function
// must change only the fields it manages and leave the rest (server
// defaults, fields set by other controllers) as it finds them.
type MutateFunc func() error

// The one rule of adoption: Sluice edits an existing object when, and
// only when, its controller reference is the Canary (same UID). Flagger
// writes the same reference on everything it creates for a Canary, so when
// Sluice takes over from Flagger, Flagger's objects are adopted as they
// are: patched in place (same UID, same ClusterIP), never deleted and
// recreated, whatever labels and annotations they carry. An object with
// another controller, or none, is someone else's: Sluice reports it
// (problem.NotOwned) and does not touch it.

// notOwned returns the problem of an existing object that Ensure did not
// edit because the Canary does not control it. controller describes the
// object's controller ("Deployment other (uid ...)"), or is empty when it
// has none.
func notOwned(kind string, obj client.Object, controller string, owner *flaggerv1beta1.Canary) *problem.Problem {
	by := "has no controller"
	if controller != "" {
		by = "is controlled by " + controller
	}
	return problem.New(problem.NotOwned, "%s %s/%s %s, not by Canary %s/%s: Sluice does not edit objects it does not own; delete it or choose another name",
		kind, obj.GetNamespace(), obj.GetName(), by, owner.Namespace, owner.Name)
}

// Changes records what Ensure created or updated during one reconcile, so
// that the controller can say what it restored when nothing was meant to
// change.
type Changes struct {
	mu   sync.Mutex
	list []string
	// created holds the objects created during the reconcile, by kind and
	// key: the cache may not have them yet when a later step of the same
	// reconcile ensures one again.
	created map[string]client.Object
}

type changesKey struct{}

// WithChanges returns a context in which Ensure records its writes in the
// returned Changes.
func WithChanges(ctx context.Context) (context.Context, *Changes) {
	c := &Changes{}
	return context.WithValue(ctx, changesKey{}, c), c
}

// List returns the writes recorded so far, such as "updated VirtualService
// test/podinfo".
func (c *Changes) List() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.list)
}

// rememberCreated keeps a copy of obj, just created, for the rest of the
// reconcile.
func rememberCreated(ctx context.Context, kind string, obj client.Object) {
	if c, ok := ctx.Value(changesKey{}).(*Changes); ok {
		c.mu.Lock()
		if c.created == nil {
			c.created = map[string]client.Object{}
		}
		c.created[kind+" "+client.ObjectKeyFromObject(obj).String()] = obj.DeepCopyObject().(client.Object)
		c.mu.Unlock()
	}
}

// createdEarlier copies into obj the object of kind created earlier in the
// reconcile, and reports whether there was one.
func createdEarlier(ctx context.Context, kind string, obj client.Object) bool {
	c, ok := ctx.Value(changesKey{}).(*Changes)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kept, ok := c.created[kind+" "+client.ObjectKeyFromObject(obj).String()]
	if !ok {
		return false
	}
	return copyInto(kept, obj)
}

// copyInto sets *dst to a deep copy of *src when both have the same type.
func copyInto(src, dst client.Object) bool {
	sv, dv := reflect.ValueOf(src), reflect.ValueOf(dst)
	if sv.Type() != dv.Type() || dv.Kind() != reflect.Pointer || dv.IsNil() {
		return false
	}
	dv.Elem().Set(reflect.ValueOf(src.DeepCopyObject()).Elem())
	return true
}

func recordChange(ctx context.Context, what, kind string, key client.ObjectKey) {
	if c, ok := ctx.Value(changesKey{}).(*Changes); ok {
		c.mu.Lock()
		c.list = append(c.list, fmt.Sprintf("%s %s %s", what, kind, key))
		c.mu.Unlock()
	}
}

// Ensure creates or patches one object that a Canary owns. It is the one
// write path of the routers and of EnsureServices.
//
// obj names the object (name and namespace, which must be the Canary's)
// and receives the live state. When the object does not exist, mutate sets
// the desired fields on the empty obj and Ensure creates it with the
// Canary as controller. When it exists and the Canary controls it, mutate
// sets the managed fields onto the live state and Ensure sends a merge
// patch of the difference, guarded by the resourceVersion it read; when
// there is no difference it writes nothing. An existing object that the
// Canary does not control is left alone and a problem.NotOwned
// *problem.Problem returned (see the rule of adoption above).
//
// The returned result says whether the object was created, updated or
// left as it was. On success obj holds the object as the server stored it.
func Ensure(ctx context.Context, c client.Client, owner *flaggerv1beta1.Canary, obj client.Object, mutate MutateFunc) (controllerutil.OperationResult, error) {
	kind := kindOf(c, obj)
	key := client.ObjectKeyFromObject(obj)
	if key.Namespace != owner.Namespace {
		return controllerutil.OperationResultNone, fmt.Errorf("%s %s: not in the namespace of Canary %s/%s, so the Canary cannot own it", kind, key, owner.Namespace, owner.Name)
	}
	logger := log.FromContext(ctx).WithValues("canary", klog.KObj(owner), "kind", kind, "object", klog.KObj(obj))

	err := c.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) && createdEarlier(ctx, kind, obj) {
		// Created by this reconcile, not in the cache yet: a second create
		// would only be refused.
		err = nil
	}
	if err != nil {
		if !apierrors.IsNotFound(err) {
			return controllerutil.OperationResultNone, fmt.Errorf("reading %s %s: %w", kind, key, err)
		}
		if err := runMutate(mutate, obj, key, kind); err != nil {
			return controllerutil.OperationResultNone, err
		}
		setController(obj, controllerRef(owner))
		if err := c.Create(ctx, obj, client.FieldOwner(FieldOwner)); err != nil {
			return controllerutil.OperationResultNone, fmt.Errorf("creating %s %s: %w", kind, key, err)
		}
		logger.Info("Created object")
		recordChange(ctx, "created", kind, key)
		rememberCreated(ctx, kind, obj)
		return controllerutil.OperationResultCreated, nil
	}

	if err := checkOwner(obj, owner, kind); err != nil {
		return controllerutil.OperationResultNone, err
	}
	before := obj.DeepCopyObject().(client.Object)
	if err := runMutate(mutate, obj, key, kind); err != nil {
		return controllerutil.OperationResultNone, err
	}
	setController(obj, controllerRef(owner))

	// Compare the JSON merge patch rather than the structs, so that a nil
	// and an empty map or slice, which serialise alike, count as equal.
	diff, err := client.MergeFrom(before).Data(obj)
	if err != nil {
		return controllerutil.OperationResultNone, fmt.Errorf("computing the patch of %s %s: %w", kind, key, err)
	}
	if string(diff) == "{}" {
		return controllerutil.OperationResultNone, nil
	}
	patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	if err := c.Patch(ctx, obj, patch, client.FieldOwner(FieldOwner)); err != nil {
		return controllerutil.OperationResultNone, fmt.Errorf("patching %s %s: %w", kind, key, err)
	}
	logger.Info("Patched object", "patch", string(diff))
	recordChange(ctx, "updated", kind, key)
	return controllerutil.OperationResultUpdated, nil
}

// runMutate calls mutate and checks that it kept the object's identity.
func runMutate(mutate MutateFunc, obj client.Object, key client.ObjectKey, kind string) error {
	if mutate != nil {
		if err := mutate(); err != nil {
			return fmt.Errorf("rendering %s %s: %w", kind, key, err)
		}
	}
	if got := client.ObjectKeyFromObject(obj); got != key {
		return fmt.Errorf("rendering %s %s: the mutate function changed its name to %s", kind, key, got)
	}
	return nil
}

// checkOwner returns a problem.NotOwned *problem.Problem unless owner
// controls obj.
func checkOwner(obj client.Object, owner *flaggerv1beta1.Canary, kind string) error {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref != nil && ref.UID == owner.UID {
		return nil
	}
	controller := ""
	if ref != nil {
		controller = fmt.Sprintf("%s %s (uid %s)", ref.Kind, ref.Name, ref.UID)
	}
	return notOwned(kind, obj, controller, owner)
}

// CheckOwner returns a problem (reason NotOwned) unless the Canary
// controls obj: Sluice does not edit an object someone else owns.
func CheckOwner(c client.Client, obj client.Object, owner *flaggerv1beta1.Canary) error {
	return checkOwner(obj, owner, kindOf(c, obj))
}

// IsControlledBy reports whether the Canary is the controller of obj.
func IsControlledBy(obj client.Object, owner *flaggerv1beta1.Canary) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && ref.UID == owner.UID
}

// controllerRef is the controller owner reference to a Canary.
func controllerRef(owner *flaggerv1beta1.Canary) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         flaggerv1beta1.GroupVersion.String(),
		Kind:               "Canary",
		Name:               owner.Name,
		UID:                owner.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

// setController makes ref the controller of obj: it replaces an existing
// reference to the same owner in place (so that an unchanged object stays
// unchanged), drops any other controller reference and keeps the other
// owners.
func setController(obj client.Object, ref metav1.OwnerReference) {
	refs := obj.GetOwnerReferences()
	out := make([]metav1.OwnerReference, 0, len(refs)+1)
	found := false
	for _, r := range refs {
		switch {
		case r.UID == ref.UID:
			if !found {
				out = append(out, ref)
				found = true
			}
		case ptr.Deref(r.Controller, false):
			// Unreachable for an object Ensure accepted (its controller is
			// the Canary): an object has one controller.
		default:
			out = append(out, r)
		}
	}
	if !found {
		out = append(out, ref)
	}
	obj.SetOwnerReferences(out)
}

// kindOf names the kind of obj for messages.
func kindOf(c client.Client, obj client.Object) string {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return fmt.Sprintf("%T", obj)
	}
	return gvk.Kind
}
