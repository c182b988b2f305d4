package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "serving.knative.dev", Version: "v1"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Service{}, &ServiceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Service is a Knative Service: a workload that Knative runs as immutable
// revisions, and the split of its traffic between them. Only the fields
// Sluice reads and writes are here; a patch computed from these types
// leaves the others as they are.
//
// +kubebuilder:object:root=true
type Service struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec holds the traffic split.
	Spec ServiceSpec `json:"spec,omitempty"`
	// Status holds the revisions and the split in effect.
	Status ServiceStatus `json:"status,omitempty"`
}

// ServiceSpec is the part of a Service's spec that Sluice writes.
type ServiceSpec struct {
	// Traffic splits the requests between revisions by percent.
	Traffic []TrafficTarget `json:"traffic,omitempty"`
}

// TrafficTarget is a revision with its share of the requests.
type TrafficTarget struct {
	// Tag names the target with its own URL.
	Tag string `json:"tag,omitempty"`
	// RevisionName names the revision.
	RevisionName string `json:"revisionName,omitempty"`
	// ConfigurationName names a configuration whose latest ready
	// revision is meant.
	ConfigurationName string `json:"configurationName,omitempty"`
	// LatestRevision means the latest ready revision of the Service.
	LatestRevision *bool `json:"latestRevision,omitempty"`
	// Percent is the target's share of the requests, from 0 to 100.
	Percent *int64 `json:"percent,omitempty"`
}

// ServiceStatus is the part of a Service's status that Sluice reads.
type ServiceStatus struct {
	// ObservedGeneration is the generation the status describes.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LatestCreatedRevisionName is the newest revision.
	LatestCreatedRevisionName string `json:"latestCreatedRevisionName,omitempty"`
	// LatestReadyRevisionName is the newest revision that is ready.
	LatestReadyRevisionName string `json:"latestReadyRevisionName,omitempty"`
	// Traffic is the split in effect, with the latest revision resolved.
	Traffic []TrafficTarget `json:"traffic,omitempty"`
}

// ServiceList is a list of Services.
//
// +kubebuilder:object:root=true
type ServiceList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the Services in the list.
	Items []Service `json:"items"`
}
