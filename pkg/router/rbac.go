package router

// The permissions of the routers added for Flagger's remaining providers,
// for controller-gen (make manifests), which adds them to the manager's
// ClusterRole. With -kubeconfig-service-mesh the mesh providers' objects
// are in the mesh cluster, and the kubeconfig's user there needs the same
// verbs on them.

// +kubebuilder:rbac:groups=gloo.solo.io,resources=upstreams,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=gateway.solo.io,resources=routetables,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=kuma.io,resources=trafficroutes,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apisix.apache.org,resources=apisixroutes,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=appmesh.k8s.aws,resources=virtualnodes;virtualrouters;virtualservices,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=serving.knative.dev,resources=services,verbs=get;list;watch;patch
