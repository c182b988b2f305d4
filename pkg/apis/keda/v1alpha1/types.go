package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the kinds in this package.
	GroupVersion = schema.GroupVersion{Group: "keda.sh", Version: "v1alpha1"}

	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ScaledObject{}, &ScaledObjectList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Annotations KEDA reads on a ScaledObject.
const (
	// PausedReplicasAnnotation pauses the autoscaling of a ScaledObject:
	// KEDA scales the target to the annotation's replica count and keeps it
	// there until the annotation is removed.
	PausedReplicasAnnotation = "autoscaling.keda.sh/paused-replicas"
	// PausedAnnotation set to "true" pauses the autoscaling of a
	// ScaledObject at the target's current replica count.
	PausedAnnotation = "autoscaling.keda.sh/paused"
)

// ScaledObject scales a workload on external events through an HPA that
// KEDA manages.
//
// +kubebuilder:object:root=true
type ScaledObject struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what to scale, how far and on which triggers.
	Spec ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec is the desired scaling of a ScaledObject.
type ScaledObjectSpec struct {
	// ScaleTargetRef names the workload to scale.
	ScaleTargetRef *ScaleTarget `json:"scaleTargetRef"`
	// PollingInterval is how often, in seconds, the triggers are checked.
	// KEDA's default is 30.
	PollingInterval *int32 `json:"pollingInterval,omitempty"`
	// CooldownPeriod is how long, in seconds, after the last active
	// trigger the target is scaled to zero. KEDA's default is 300.
	CooldownPeriod *int32 `json:"cooldownPeriod,omitempty"`
	// InitialCooldownPeriod is how long, in seconds, after creation the
	// target is not scaled to zero. KEDA's default is 0.
	InitialCooldownPeriod *int32 `json:"initialCooldownPeriod,omitempty"`
	// IdleReplicaCount is the replica count while no trigger is active.
	IdleReplicaCount *int32 `json:"idleReplicaCount,omitempty"`
	// MinReplicaCount is the least replica count. KEDA's default is 0.
	MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
	// MaxReplicaCount is the largest replica count. KEDA's default is 100.
	MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
	// Advanced holds the settings of the HPA KEDA creates.
	Advanced *AdvancedConfig `json:"advanced,omitempty"`
	// Triggers are the event sources the scaling follows.
	Triggers []ScaleTriggers `json:"triggers"`
	// Fallback is the replica count used when the triggers fail.
	Fallback *Fallback `json:"fallback,omitempty"`
}

// ScaleTarget names the workload a ScaledObject scales.
type ScaleTarget struct {
	// Name is the workload's name.
	Name string `json:"name"`
	// APIVersion is the workload's API version. KEDA's default is apps/v1.
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind is the workload's kind. KEDA's default is Deployment.
	Kind string `json:"kind,omitempty"`
	// EnvSourceContainerName is the container whose environment the
	// triggers read.
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// AdvancedConfig holds the settings of the HPA KEDA creates.
type AdvancedConfig struct {
	// HorizontalPodAutoscalerConfig names the HPA and sets its behavior.
	HorizontalPodAutoscalerConfig *HorizontalPodAutoscalerConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
	// RestoreToOriginalReplicaCount scales the target back to its replica
	// count from before the ScaledObject when the ScaledObject is deleted.
	RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
	// ScalingModifiers combine the triggers' metrics into one.
	ScalingModifiers *ScalingModifiers `json:"scalingModifiers,omitempty"`
}

// HorizontalPodAutoscalerConfig names the HPA KEDA creates and sets its
// behavior.
type HorizontalPodAutoscalerConfig struct {
	// Name is the HPA's name. KEDA's default is keda-hpa-<ScaledObject>.
	Name string `json:"name,omitempty"`
	// Behavior is the HPA's scaling behavior.
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// ScalingModifiers combine the metrics of several triggers with a formula.
type ScalingModifiers struct {
	// Formula combines the named triggers' metrics.
	Formula string `json:"formula,omitempty"`
	// Target is the target value of the combined metric.
	Target string `json:"target,omitempty"`
	// ActivationTarget is the value above which the target is scaled from zero.
	ActivationTarget string `json:"activationTarget,omitempty"`
	// MetricType is the HPA metric type of the combined metric.
	MetricType autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// ScaleTriggers is one event source of a ScaledObject.
type ScaleTriggers struct {
	// Type is the scaler, such as prometheus or kafka.
	Type string `json:"type"`
	// Name names the trigger; spec.autoscalerRef.primaryScalerQueries
	// refers to triggers by it.
	Name string `json:"name,omitempty"`
	// UseCachedMetrics serves the HPA the metric from KEDA's cache.
	UseCachedMetrics bool `json:"useCachedMetrics,omitempty"`
	// Metadata configures the scaler; for the query-based scalers its
	// "query" entry is the query.
	Metadata map[string]string `json:"metadata"`
	// AuthenticationRef names the TriggerAuthentication the scaler uses.
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`
	// MetricType is the HPA metric type of the trigger's metric.
	MetricType autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// AuthenticationRef names a TriggerAuthentication or
// ClusterTriggerAuthentication.
type AuthenticationRef struct {
	// Name is the object's name.
	Name string `json:"name"`
	// Kind is TriggerAuthentication (the default) or
	// ClusterTriggerAuthentication.
	Kind string `json:"kind,omitempty"`
}

// Fallback is the replica count of a target whose triggers keep failing.
type Fallback struct {
	// FailureThreshold is the number of failed checks before the fallback.
	FailureThreshold int32 `json:"failureThreshold"`
	// Replicas is the fallback replica count.
	Replicas int32 `json:"replicas"`
	// Behavior chooses how the fallback replica count applies.
	Behavior string `json:"behavior,omitempty"`
}

// ScaledObjectList is a list of ScaledObjects.
//
// +kubebuilder:object:root=true
type ScaledObjectList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the ScaledObjects in the list.
	Items []ScaledObject `json:"items"`
}
