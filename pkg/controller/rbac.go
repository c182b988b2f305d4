package controller

// The permissions the manager needs, for controller-gen (make manifests),
// which writes them to kustomize/base/rbac/role.yaml. Each later feature
// adds the verbs it uses, so the ClusterRole stays the least the controller
// needs.

// +kubebuilder:rbac:groups=flagger.app,resources=canaries,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=flagger.app,resources=canaries/status,verbs=patch
// +kubebuilder:rbac:groups=flagger.app,resources=canaries/finalizers,verbs=update
// +kubebuilder:rbac:groups=flagger.app,resources=metrictemplates;alertproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// Leader election: the Lease in the namespace Sluice runs in (the install's
// -leader-election-namespace), not cluster-wide.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=sluice-system
// Flagger's leader-election Lease, read by name wherever Flagger keeps it,
// to tell whether Flagger still runs (see FlaggerDetector).
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get,resourceNames=flagger-leader-election

// Workloads: the target is read and scaled; the primary is created and promoted.
// +kubebuilder:rbac:groups=apps,resources=deployments;daemonsets,verbs=get;list;watch;create;patch
// Services: apex, primary and canary.
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch
// Tracked configs: ConfigMaps are watched by metadata; Secrets are never
// listed or watched, only read by name (the ones a Canary's target uses,
// and the credentials its MetricTemplates and AlertProviders name); both
// are copied for the primary.
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;patch
// Autoscalers: the target's is read, the primary's is created and updated.
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;patch
// Routers: the routing objects Sluice creates for each provider.
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=get
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=split.smi-spec.io,resources=trafficsplits,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=projectcontour.io,resources=httpproxies,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=traefik.io,resources=traefikservices,verbs=get;list;watch;create;patch
// The baseline of analysis.baseline is deleted when its analysis ends, with
// its Service and its Istio DestinationRule.
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=delete
// +kubebuilder:rbac:groups="",resources=services,verbs=delete
// +kubebuilder:rbac:groups=networking.istio.io,resources=destinationrules,verbs=delete

// Metric providers that read the cluster: keptn reads KeptnMetrics, and
// creates, reads and deletes the Analyses of its checks.
// +kubebuilder:rbac:groups=metrics.keptn.sh,resources=keptnmetrics,verbs=get;list;watch
// +kubebuilder:rbac:groups=metrics.keptn.sh,resources=analyses,verbs=create;get;delete
