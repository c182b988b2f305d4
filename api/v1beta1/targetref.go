package v1beta1

// KnativeServiceAPIVersion is the apiVersion of a Knative Service target.
const KnativeServiceAPIVersion = "serving.knative.dev/v1"

// IsKnativeService reports whether the reference names a Knative Service
// (serving.knative.dev/v1 Service) rather than a Kubernetes Service, as
// Flagger tells them apart.
func (r LocalObjectReference) IsKnativeService() bool {
	return r.Kind == "Service" && r.APIVersion == KnativeServiceAPIVersion
}
