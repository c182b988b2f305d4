package controller

// The permissions the manager needs, for controller-gen (make manifests),
// which writes them to kustomize/base/rbac/role.yaml. Each later feature
// adds the verbs it uses, so the ClusterRole stays the least the controller
// needs.

// +kubebuilder:rbac:groups=flagger.app,resources=canaries,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=flagger.app,resources=canaries/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=flagger.app,resources=canaries/finalizers,verbs=update
// +kubebuilder:rbac:groups=flagger.app,resources=metrictemplates;alertproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update
