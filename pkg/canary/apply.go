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
