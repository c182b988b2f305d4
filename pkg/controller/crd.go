package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// canaryCRD is the name of the Canary CustomResourceDefinition.
const canaryCRD = "canaries.flagger.app"

// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get,resourceNames=canaries.flagger.app

// StatusFieldsKept reports whether the installed Canary CRD keeps the
// status fields Sluice adds to Flagger's (it is Sluice's, a superset of
// Flagger's). When it is Flagger's own, the API server drops them: Sluice
// still works (see CanaryReconciler.KeepStatusInMemory), and the returned
// message says what to do. A CRD that cannot be read is taken to be
// Sluice's.
func StatusFieldsKept(ctx context.Context, c client.Reader) (bool, string, error) {
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	if err := c.Get(ctx, client.ObjectKey{Name: canaryCRD}, crd); err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return true, "", fmt.Errorf("reading CustomResourceDefinition %s: %w", canaryCRD, err)
	}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		vm, ok := v.(map[string]any)
		if !ok || vm["name"] != "v1beta1" {
			continue
		}
		if _, found, _ := unstructured.NestedMap(vm, "schema", "openAPIV3Schema", "properties", "status", "properties", "stepStartedAt"); found {
			return true, "", nil
		}
	}
	return false, fmt.Sprintf("the installed CustomResourceDefinition %s is Flagger's (or an older Sluice's): the API server drops the "+
		"status fields Sluice adds (waitingSince, lastAnalysisTime, stepStartedAt, lastRequest, analysis, observedGeneration). "+
		"Sluice keeps them in memory meanwhile, so a restart restarts the analysis timers; apply Sluice's CRDs, a superset "+
		"of Flagger's that leaves every Canary as it is: kubectl apply --server-side -k kustomize/base/crd", canaryCRD), nil
}
