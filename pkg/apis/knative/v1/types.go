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

// PrimaryRevisionAnnotation on a Knative Service names the revision that
// serves as the primary of its Canary (Flagger's annotation).
const PrimaryRevisionAnnotation = "flagger.app/primary-revision"

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Service{}, &ServiceList{}, &Revision{}, &RevisionList{})
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
	// Conditions are Ready, ConfigurationsReady and RoutesReady.
	Conditions []Condition `json:"conditions,omitempty"`
}

// Condition is one aspect of a Knative object's state.
type Condition struct {
	// Type names the aspect, such as Ready.
	Type string `json:"type"`
	// Status is True, False or Unknown.
	Status string `json:"status"`
	// Reason is the one-word cause of the status.
	Reason string `json:"reason,omitempty"`
	// Message says what is wrong, for a person.
	Message string `json:"message,omitempty"`
}

// Revision is an immutable snapshot of a Knative Service's code and
// configuration. Only its readiness is here.
//
// +kubebuilder:object:root=true
type Revision struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Status holds the revision's readiness.
	Status RevisionStatus `json:"status,omitempty"`
}

// RevisionStatus is the part of a Revision's status that Sluice reads.
type RevisionStatus struct {
	// ObservedGeneration is the generation the status describes.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions are Ready, ResourcesAvailable and ContainerHealthy.
	Conditions []Condition `json:"conditions,omitempty"`
}

// RevisionList is a list of Revisions.
//
// +kubebuilder:object:root=true
type RevisionList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the Revisions in the list.
	Items []Revision `json:"items"`
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
