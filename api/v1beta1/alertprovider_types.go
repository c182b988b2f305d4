package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AlertProvider is a chat service or webhook that receives a Canary's
// alerts. Canaries refer to it from analysis.alerts[].providerRef.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
type AlertProvider struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says where and how alerts are delivered.
	// +optional
	Spec AlertProviderSpec `json:"spec"`

	// status reports problems Sluice found when delivering alerts.
	// +optional
	Status AlertProviderStatus `json:"status,omitzero"`
}

// AlertProviderList is a list of AlertProviders.
//
// +kubebuilder:object:root=true
type AlertProviderList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the AlertProviders in the list.
	Items []AlertProvider `json:"items"`
}

// Alert provider types accepted in AlertProvider spec.type.
const (
	AlertProviderSlack   = "slack"
	AlertProviderMSTeams = "msteams"
	AlertProviderDiscord = "discord"
	AlertProviderRocket  = "rocket"
	AlertProviderGChat   = "gchat"
)

// AlertProviderSpec says where and how alerts are delivered. The address
// comes from spec.address or from the Secret named in secretRef.
//
// +kubebuilder:validation:XValidation:rule="has(self.address) || has(self.secretRef)",message="set address or secretRef (a Secret with an address key)"
type AlertProviderSpec struct {
	// type is the kind of service: slack, msteams, discord, rocket or gchat.
	// +kubebuilder:validation:Enum=slack;msteams;discord;rocket;gchat
	// +required
	Type string `json:"type"`

	// channel is the channel messages are posted to, where the service
	// lets the sender choose (Slack, Rocket.Chat). Defaults to general.
	// +optional
	Channel string `json:"channel,omitempty"`

	// username is the name messages are posted as, where the service lets
	// the sender choose. Defaults to flagger, so existing chat filters match.
	// +optional
	Username string `json:"username,omitempty"`

	// address is the incoming-webhook URL of the service. The Secret's
	// address key, when set, takes precedence.
	// +optional
	Address string `json:"address,omitempty"`

	// proxy is the URL of an HTTP proxy for reaching the service.
	// +optional
	Proxy string `json:"proxy,omitempty"`

	// secretRef names a Secret in the AlertProvider's namespace with the keys
	// address, token (sent as a bearer token, for Slack's chat.postMessage),
	// proxy and username; each overrides the field of the same name.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
}

// AlertProviderStatus reports what Sluice found when delivering alerts.
type AlertProviderStatus struct {
	// conditions describe the state of the provider.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
