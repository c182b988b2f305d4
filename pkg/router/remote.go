package router

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// OwnerAnnotation names, as <namespace>/<name>, the Canary that owns a
// routing object which cannot carry an owner reference to it: an object in
// the mesh cluster of -kubeconfig-service-mesh, where the Canary does not
// exist (the garbage collector there would delete an object whose owner it
// cannot find), or a cluster-scoped object such as Kuma's TrafficRoute,
// which may not have a namespaced owner. Such objects are not deleted with
// their Canary.
const OwnerAnnotation = "sluice.flagger.app/canary"

// remoteClient is a client of the mesh cluster that keeps the ownership of
// namespaced objects in OwnerAnnotation instead of owner references, and
// translates between the two, so that Ensure and the routers work on it as
// on the Canary's own cluster:
//
//   - on writes, the controller reference to a Canary is removed and
//     recorded in OwnerAnnotation;
//   - on reads, OwnerAnnotation is removed and, when the Canary it names
//     exists in the Canary's cluster, replaced by a controller reference
//     to it. Ownership thus follows the Canary's name: a Canary deleted
//     and created again owns the objects its predecessor left.
//
// Cluster-scoped objects are passed through as they are.
type remoteClient struct {
	client.Client
	// canaries reads Canaries in the Canary's own cluster.
	canaries client.Reader
}

// newRemoteClient wraps a client of the mesh cluster; canaries reads the
// Canaries from their own cluster.
func newRemoteClient(remote client.Client, canaries client.Reader) client.Client {
	return &remoteClient{Client: remote, canaries: canaries}
}

// Get reads obj and turns OwnerAnnotation into an owner reference.
func (c *remoteClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	return c.toOwnerReference(ctx, obj)
}

// Create creates obj with its Canary owner reference written as
// OwnerAnnotation.
func (c *remoteClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if obj.GetNamespace() == "" {
		return c.Client.Create(ctx, obj, opts...)
	}
	refs := obj.GetOwnerReferences()
	toAnnotation(obj)
	if err := c.Client.Create(ctx, obj, opts...); err != nil {
		obj.SetOwnerReferences(refs)
		return err
	}
	return c.toOwnerReference(ctx, obj)
}

// Update replaces obj with its Canary owner reference written as
// OwnerAnnotation.
func (c *remoteClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if obj.GetNamespace() == "" {
		return c.Client.Update(ctx, obj, opts...)
	}
	refs := obj.GetOwnerReferences()
	toAnnotation(obj)
	if err := c.Client.Update(ctx, obj, opts...); err != nil {
		obj.SetOwnerReferences(refs)
		return err
	}
	return c.toOwnerReference(ctx, obj)
}

// Patch sends a merge patch whose owner references, if it changes them,
// are rewritten as a change of OwnerAnnotation.
func (c *remoteClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if obj.GetNamespace() == "" {
		return c.Client.Patch(ctx, obj, patch, opts...)
	}
	if patch.Type() != client.Merge.Type() {
		return fmt.Errorf("patching %s/%s in the mesh cluster: only merge patches are supported, not %s", obj.GetNamespace(), obj.GetName(), patch.Type())
	}
	data, err := patch.Data(obj)
	if err != nil {
		return fmt.Errorf("computing the patch of %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	if data, err = ownerPatch(data, canaryOwner(obj)); err != nil {
		return fmt.Errorf("rewriting the patch of %s/%s for the mesh cluster: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	refs := obj.GetOwnerReferences()
	if err := c.Client.Patch(ctx, obj, client.RawPatch(patch.Type(), data), opts...); err != nil {
		obj.SetOwnerReferences(refs)
		return err
	}
	return c.toOwnerReference(ctx, obj)
}

// toOwnerReference replaces OwnerAnnotation on obj by a controller
// reference to the Canary it names, if that Canary exists.
func (c *remoteClient) toOwnerReference(ctx context.Context, obj client.Object) error {
	annotations := obj.GetAnnotations()
	owner, ok := annotations[OwnerAnnotation]
	if !ok || obj.GetNamespace() == "" {
		return nil
	}
	delete(annotations, OwnerAnnotation)
	obj.SetAnnotations(annotations)
	ns, name, ok := strings.Cut(owner, "/")
	if !ok {
		return nil
	}
	cd := &flaggerv1beta1.Canary{}
	if err := c.canaries.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cd); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading Canary %s, the owner of %s/%s in the mesh cluster: %w", owner, obj.GetNamespace(), obj.GetName(), err)
	}
	setController(obj, controllerRef(cd))
	return nil
}

// canaryOwner returns <namespace>/<name> of the Canary that controls obj,
// or "".
func canaryOwner(obj client.Object) string {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil || ref.Kind != "Canary" || ref.APIVersion != flaggerv1beta1.GroupVersion.String() {
		return ""
	}
	return obj.GetNamespace() + "/" + ref.Name
}

// toAnnotation moves the Canary controller reference of obj, if any, to
// OwnerAnnotation; other owner references are dropped too, as their
// owners are not in the mesh cluster either.
func toAnnotation(obj client.Object) {
	owner := canaryOwner(obj)
	obj.SetOwnerReferences(nil)
	if owner == "" {
		return
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[OwnerAnnotation] = owner
	obj.SetAnnotations(annotations)
}

// ownerPatch rewrites a JSON merge patch for the mesh cluster: a change of
// metadata.ownerReferences becomes OwnerAnnotation set to owner (or
// removed when owner is empty), and OwnerAnnotation is never removed
// while the object has an owner.
func ownerPatch(data []byte, owner string) ([]byte, error) {
	var patch map[string]any
	if err := json.Unmarshal(data, &patch); err != nil {
		return nil, err
	}
	meta, ok := patch["metadata"].(map[string]any)
	if !ok {
		return data, nil
	}
	_, refsChanged := meta["ownerReferences"]
	delete(meta, "ownerReferences")
	annotations, _ := meta["annotations"].(map[string]any)
	if _, touched := annotations[OwnerAnnotation]; !refsChanged && !touched {
		return data, nil
	}
	if annotations == nil {
		annotations = map[string]any{}
		meta["annotations"] = annotations
	}
	annotations[OwnerAnnotation] = owner
	if owner == "" {
		annotations[OwnerAnnotation] = nil
	}
	return json.Marshal(patch)
}
