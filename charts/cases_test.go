package charts_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// chartCase is one combination of values: what it must render, what it
// must not, and the arguments the main container must get. A case with
// wantErr must fail to render with that text.
type chartCase struct {
	name    string
	values  string
	want    []string // "Kind/name"
	absent  []string
	args    []string
	wantErr string
}

var sluiceCases = []chartCase{
	{
		name: "defaults",
		want: []string{"ServiceAccount/sluice", "ClusterRole/sluice", "ClusterRoleBinding/sluice", "Deployment/sluice",
			"ValidatingAdmissionPolicy/sluice-canary-warnings", "ValidatingAdmissionPolicyBinding/sluice-canary-warnings",
			"ValidatingAdmissionPolicy/sluice-metrictemplate-warnings"},
		absent: []string{"Role/sluice", "Service/sluice", "ServiceMonitor/sluice", "PodMonitor/sluice", "PodDisruptionBudget/sluice", "NetworkPolicy/sluice", "Deployment/sluice-prometheus"},
		args:   []string{"-metrics-server=http://prometheus:9090", "-enable-config-tracking=true", "-log-level=info"},
	},
	{
		name: "Flagger's options",
		values: `meshProvider: linkerd
metricsServer: http://prometheus.linkerd-viz:9090
selectorLabels: app,name
leaderElection: {enabled: true, replicaCount: 2}
slack: {url: "https://hooks.slack.com/services/x", channel: canaries, user: sluice, proxy: "http://proxy:3128"}
msteams: {url: "https://outlook.office.com/webhook/x"}
clusterName: prod
eventWebhook: http://events.example/
ingressClass: contour
kubeconfigQPS: "200"
kubeconfigBurst: "400"
threadiness: 4
noCrossNamespaceRefs: true
configTracking: {enabled: false}
podDisruptionBudget: {enabled: true, minAvailable: 1}
serviceMonitor: {enabled: true, namespace: monitoring, labels: {release: prom}}
podMonitor: {enabled: true, additionalLabels: {team: a}}
env: [{name: SLACK_TOKEN, value: x}]`,
		want: []string{"PodDisruptionBudget/sluice", "Service/sluice", "ServiceMonitor/sluice", "PodMonitor/sluice", "ClusterRole/sluice"},
		args: []string{"-mesh-provider=linkerd", "-metrics-server=http://prometheus.linkerd-viz:9090", "-selector-labels=app,name",
			"-enable-leader-election=true", "-leader-election-namespace=sluice-system", "-slack-url=https://hooks.slack.com/services/x",
			"-slack-channel=canaries", "-slack-user=sluice", "-slack-proxy-url=http://proxy:3128", "-msteams-url=https://outlook.office.com/webhook/x",
			"-cluster-name=prod", "-event-webhook=http://events.example/", "-ingress-class=contour", "-kubeconfig-qps=200",
			"-kubeconfig-burst=400", "-threadiness=4", "-no-cross-namespace-refs=true", "-enable-config-tracking=false"},
	},
	{
		name:   "no admission warnings",
		values: "admissionWarnings: {enabled: false}",
		want:   []string{"Deployment/sluice"},
		absent: []string{"ValidatingAdmissionPolicy/sluice-canary-warnings", "ValidatingAdmissionPolicyBinding/sluice-canary-warnings"},
	},
	{
		name:   "one namespace",
		values: "namespace: apps\nleaderElection: {enabled: true}",
		want:   []string{"Role/sluice", "RoleBinding/sluice"},
		absent: []string{"ClusterRole/sluice", "ClusterRoleBinding/sluice", "Role/sluice-leader-election"},
		// Sluice puts the Lease in the watched namespace (-namespace wins).
		args: []string{"-namespace=apps"},
	},
	{
		name:   "one namespace, the release's",
		values: "namespace: sluice-system\nleaderElection: {enabled: true}",
		want:   []string{"Role/sluice", "RoleBinding/sluice"},
		absent: []string{"ClusterRole/sluice", "Role/sluice-leader-election"},
		args:   []string{"-namespace=sluice-system"},
	},
	{
		name: "NetworkPolicy, bundled Prometheus, dashboards, Linkerd policy",
		values: `networkPolicy: {enabled: true, ingressFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]}
prometheus: {install: true}
grafana: {dashboards: {enabled: true, namespace: monitoring}}
linkerdAuthPolicy: {create: true}
maxConcurrentCanaries: 3`,
		want: []string{"NetworkPolicy/sluice", "Deployment/sluice-prometheus", "Service/sluice-prometheus", "ClusterRole/sluice-prometheus",
			"ConfigMap/sluice-dashboard-sluice-canaries", "ConfigMap/sluice-dashboard-sluice-istio",
			"ConfigMap/sluice-dashboard-sluice-linkerd", "ConfigMap/sluice-dashboard-sluice-nginx", "ConfigMap/sluice-dashboard-sluice-gatewayapi",
			"AuthorizationPolicy/prometheus-admin-sluice"},
		args: []string{"-metrics-server=http://sluice-prometheus:9090", "-max-concurrent-canaries=3"},
	},
	{
		name:   "an existing ServiceAccount, no RBAC",
		values: "rbac: {create: false}\nserviceAccount: {create: false, name: platform}",
		absent: []string{"ServiceAccount/sluice", "ClusterRole/sluice", "Role/sluice"},
		want:   []string{"Deployment/sluice"},
	},
	{name: "PodSecurityPolicy", values: "rbac: {pspEnabled: true}", wantErr: "PodSecurityPolicy was removed"},
	{
		name:   "mesh control plane kubeconfig",
		values: "controlplane: {kubeconfig: {secretName: mesh, key: config}}\nadditionalVolumes: [{name: extra, emptyDir: {}}]\nadditionalVolumeMounts: [{name: extra, mountPath: /extra}]",
		want:   []string{"Deployment/sluice"},
		args:   []string{"-kubeconfig-service-mesh=/var/run/sluice/mesh/config"},
	},
}

var loadtesterCases = []chartCase{
	{
		name:   "defaults",
		want:   []string{"Deployment/flagger-loadtester", "Service/flagger-loadtester"},
		absent: []string{"ServiceAccount/flagger-loadtester", "Role/flagger-loadtester", "PodDisruptionBudget/flagger-loadtester"},
		args:   []string{"-port=8080", "-timeout=1h", "-log-level=info"},
	},
	{
		name: "cluster RBAC, allowed commands, token",
		values: `rbac: {create: true, scope: cluster, rules: [{apiGroups: [""], resources: [pods], verbs: [list]}]}
allowedCommands: [helm, kubectl]
authToken: {secretName: loadtester-token}
cmd: {namespaceRegexp: "^test$"}
podDisruptionBudget: {enabled: true}`,
		want: []string{"ServiceAccount/flagger-loadtester", "ClusterRole/flagger-loadtester", "ClusterRoleBinding/flagger-loadtester", "PodDisruptionBudget/flagger-loadtester"},
		args: []string{"-allowed-commands=helm,kubectl", "-auth-token-file=/etc/loadtester/token", "-namespace-regexp=^test$"},
	},
	{
		name:   "namespaced RBAC",
		values: `rbac: {create: true, rules: [{apiGroups: [""], resources: [pods], verbs: [list]}]}`,
		want:   []string{"Role/flagger-loadtester", "RoleBinding/flagger-loadtester"},
		absent: []string{"ClusterRole/flagger-loadtester"},
	},
	{name: "Istio exposure", values: "istio: {enabled: true}", wantErr: "Gateway and VirtualService"},
	{name: "App Mesh", values: "appmesh: {enabled: true}", wantErr: "App Mesh"},
	{name: "RBAC without rules", values: "rbac: {create: true}", wantErr: "rbac.rules"},
}

// TestCharts_ValueCombinations renders each case, checks the objects and
// arguments, and applies every object with a server-side dry run.
func TestCharts_ValueCombinations(t *testing.T) {
	flags := knownFlags(t)
	d := newDryRunner(t)
	for _, suite := range []struct {
		chart, release, namespace, deployment string
		cases                                 []chartCase
	}{
		{sluiceChart, "sluice", "sluice-system", "sluice", sluiceCases},
		{loadtesterChart, "flagger-loadtester", "test", "flagger-loadtester", loadtesterCases},
	} {
		for _, tc := range suite.cases {
			t.Run(suite.chart+"/"+tc.name, func(t *testing.T) {
				objs, err := render(t.Context(), suite.chart, suite.release, suite.namespace, values(t, tc.values))
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("render error %v, want one saying %q", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("render: %v", err)
				}
				got := kinds(objs)
				for _, k := range tc.want {
					if got[k] == nil {
						t.Errorf("missing %s; rendered %v", k, keys(got))
					}
				}
				for _, k := range tc.absent {
					if got[k] != nil {
						t.Errorf("rendered %s, which these values must not create", k)
					}
				}
				args := containerArgs(t, objs, suite.deployment)
				for _, a := range tc.args {
					if !contains(args, a) {
						t.Errorf("args %v lack %s", args, a)
					}
				}
				if suite.chart == sluiceChart {
					for _, a := range args {
						name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
						if !flags[name] {
							t.Errorf("argument %s is not a flag of sluice (README's table)", a)
						}
					}
				}
				checkSecurity(t, got["Deployment/"+suite.deployment])
				for _, o := range objs {
					if err := d.apply(t.Context(), o, suite.namespace); err != nil {
						t.Errorf("server-side dry run: %v", err)
					}
				}
				if w := d.warn.take(); len(w) > 0 {
					t.Errorf("the API server warned: %q", w)
				}
			})
		}
	}
}

// checkSecurity checks the security context kustomize/base sets.
func checkSecurity(t *testing.T, d *unstructured.Unstructured) {
	t.Helper()
	pod, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
	if v, _, _ := unstructured.NestedBool(pod, "securityContext", "runAsNonRoot"); !v {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", d.GetName())
	}
	cs, _, _ := unstructured.NestedSlice(pod, "containers")
	c := cs[0].(map[string]any)
	if v, _, _ := unstructured.NestedBool(c, "securityContext", "readOnlyRootFilesystem"); !v {
		t.Errorf("%s: readOnlyRootFilesystem is not true", d.GetName())
	}
	if v, found, _ := unstructured.NestedBool(c, "securityContext", "allowPrivilegeEscalation"); !found || v {
		t.Errorf("%s: allowPrivilegeEscalation is not false", d.GetName())
	}
	if image, _, _ := unstructured.NestedString(c, "image"); strings.HasSuffix(image, ":latest") || !strings.Contains(image, ":") {
		t.Errorf("%s: image %q has no release tag", d.GetName(), image)
	}
}
