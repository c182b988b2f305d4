package canary

import (
	"context"
	"fmt"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// patchIfChanged sends a JSON merge patch that turns orig into obj, and
// nothing when the two are semantically equal, so that an idle reconcile
// costs no write. kind names the object in errors and logs. It reports
// whether it wrote.
func patchIfChanged(ctx context.Context, c client.Client, orig, obj client.Object, kind string, opts ...client.MergeFromOption) (bool, error) {
	if apiequality.Semantic.DeepEqual(orig, obj) {
		return false, nil
	}
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(orig, opts...)); err != nil {
		return false, fmt.Errorf("patching %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
	}
	log.FromContext(ctx).V(1).Info("patched", "kind", kind, "name", obj.GetName())
	return true, nil
}

// createOwned creates obj with the Canary as its controller owner. An
// object that already exists (the cache had not seen it yet) is left alone.
func createOwned(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary, obj client.Object, kind string) error {
	if err := controllerutil.SetControllerReference(cd, obj, c.Scheme()); err != nil {
		return fmt.Errorf("setting the owner of %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
	}
	err := c.Create(ctx, obj)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
	}
	log.FromContext(ctx).Info("created", "kind", kind, "name", obj.GetName())
	return nil
}

// syncPrimaryCopy keeps an autoscaler's -primary copy as want says:
// created (owned by the Canary) when get finds none, and otherwise, with
// update, want's labels and annotations merged into it and its spec set by
// setSpec, patched only when that changed something.
func syncPrimaryCopy[T client.Object](ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary, want T, kind string, update bool,
	get func(ctx context.Context, namespace, name string) (T, error), setSpec func(cur, want T)) error {
	cur, err := get(ctx, want.GetNamespace(), want.GetName())
	if apierrors.IsNotFound(err) {
		return createOwned(ctx, c, cd, want, kind)
	}
	if err != nil || !update {
		return err
	}
	orig, ok := cur.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("copying %s %s/%s", kind, cur.GetNamespace(), cur.GetName())
	}
	cur.SetLabels(mergeMeta(cur.GetLabels(), want.GetLabels()))
	cur.SetAnnotations(mergeMeta(cur.GetAnnotations(), want.GetAnnotations()))
	setSpec(cur, want)
	_, err = patchIfChanged(ctx, c, orig, cur, kind)
	return err
}
