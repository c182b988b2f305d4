package canary

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"

	kedav1alpha1 "github.com/sluicedev/sluice/pkg/apis/keda/v1alpha1"
	knativev1 "github.com/sluicedev/sluice/pkg/apis/knative/v1"
)

// The third-party kinds the workloads read and write.
// +kubebuilder:rbac:groups=keda.sh,resources=scaledobjects,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=serving.knative.dev,resources=revisions,verbs=get;list;watch

// AddToScheme registers the third-party kinds that the workloads read and
// write: KEDA's ScaledObject and Knative's Service and Revision. The
// client in Deps must know them for the Canaries that use them.
func AddToScheme(s *runtime.Scheme) error {
	if err := errors.Join(kedav1alpha1.AddToScheme(s), knativev1.AddToScheme(s)); err != nil {
		return fmt.Errorf("registering the workloads' kinds: %w", err)
	}
	return nil
}
