package metrics

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func TestQueryModel_RendersTheVariablesUsersWrite(t *testing.T) {
	full := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout"},
		Spec: flaggerv1beta1.CanarySpec{
			TargetRef:  flaggerv1beta1.LocalObjectReference{Kind: "Deployment", Name: "checkout-api"},
			Service:    flaggerv1beta1.CanaryService{Name: "checkout-svc"},
			IngressRef: &flaggerv1beta1.IngressReference{Name: "checkout-ing"},
			RouteRef:   &flaggerv1beta1.RouteReference{Name: "checkout-route"},
		},
	}
	bare := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout"},
		Spec:       flaggerv1beta1.CanarySpec{TargetRef: flaggerv1beta1.LocalObjectReference{Kind: "Deployment", Name: "checkout-api"}},
	}
	vars := flaggerv1beta1.CanaryMetric{Name: "m", Interval: "2m", TemplateVariables: map[string]string{"direction": "inbound"}}
	for _, tc := range []struct {
		name   string
		cd     *flaggerv1beta1.Canary
		metric flaggerv1beta1.CanaryMetric
		text   string
		want   string
		err    []string
	}{
		{
			name: "every variable", cd: full, metric: vars,
			text: `{{ name }} {{ namespace }} {{ target }} {{ service }} {{ ingress }} {{ route }} {{ interval }} {{ variables.direction }}`,
			want: "checkout shop checkout-api checkout-svc checkout-ing checkout-route 2m inbound",
		},
		{
			name: "defaults: service, ingress and route are the target, interval is 1m", cd: bare, metric: flaggerv1beta1.CanaryMetric{Name: "m"},
			text: `{{ service }} {{ ingress }} {{ route }} {{ interval }}`,
			want: "checkout-api checkout-api checkout-api 1m",
		},
		{
			name: "Flagger's documented Linkerd template", cd: bare, metric: vars,
			text: "histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace=\"{{ namespace }}\", deployment=~\"{{ target }}\", direction=\"{{ variables.direction }}\"}[{{ interval }}])) by (le))",
			want: `histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="shop", deployment=~"checkout-api", direction="inbound"}[2m])) by (le))`,
		},
		{
			name: "missing variable", cd: bare, metric: vars, text: `{{ variables.region }}`,
			err: []string{"MetricTemplate shop/t", `map has no entry for key "region"`, "templateVariables"},
		},
		{
			name: "variables without templateVariables", cd: bare, metric: flaggerv1beta1.CanaryMetric{Name: "m"}, text: `{{ variables.region }}`,
			err: []string{`map has no entry for key "region"`},
		},
		{
			name: "malformed template", cd: bare, metric: vars, text: `sum(x{ns="{{ namespace }"})`,
			err: []string{"parsing the query of MetricTemplate shop/t", `unexpected "}" in operand`},
		},
		{
			name: "unknown function", cd: bare, metric: vars, text: `{{ pod }}`,
			err: []string{"MetricTemplate shop/t", `function "pod" not defined`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewQueryModel(tc.cd, tc.metric).Render("MetricTemplate shop/t", tc.text)
			if tc.err == nil {
				if err != nil || got != tc.want {
					t.Errorf("got %q, %v\nwant %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			for _, s := range tc.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestBuiltinQuery_CoversEveryProviderWithMetricsAndRefusesTheOthers(t *testing.T) {
	for _, tc := range []struct {
		provider, metric string
		want             []string
		err              string
	}{
		{"istio", BuiltinRequestSuccessRate, []string{`istio_requests_total{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}", response_code!~"5.*"}[{{ interval }}]`}, ""},
		{"istio", BuiltinRequestDuration, []string{`histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{`}, ""},
		{"linkerd", BuiltinRequestSuccessRate, []string{`response_total{`, `direction="inbound"`, `classification!="failure"`}, ""},
		{"nginx", BuiltinRequestDuration, []string{`nginx_ingress_controller_request_duration_seconds_bucket{`, `canary!=""`, `by (le)) * 1000`}, ""},
		{"traefik", BuiltinRequestSuccessRate, []string{`traefik_service_request_duration_seconds_bucket{`, `le="+Inf", code!~"5.."`}, ""},
		{"apisix", BuiltinRequestDuration, []string{`apisix_http_latency_bucket{`, `type="request"`}, ""},
		{"gatewayapi:v1", BuiltinRequestDuration, []string{`http_request_duration_seconds_bucket{`, `* 1000`}, ""},
		{"appmesh:v1beta2", BuiltinRequestSuccessRate, []string{`envoy_cluster_upstream_rq{kubernetes_namespace=`}, ""},
		{"knative", BuiltinRequestSuccessRate, []string{`envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}/{{ route }}", envoy_response_code!~"5.*"}`}, ""},
		{"knative", BuiltinRequestDuration, []string{`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}/{{ route }}"}`}, ""},
		{"skipper", BuiltinRequestSuccessRate, nil, `metric "request-success-rate" is neither builtin for provider "skipper" nor backed by a templateRef: Sluice has builtin queries only for`},
		{"skipper", BuiltinRequestDuration, nil, "write a MetricTemplate"},
		{"smi:v1alpha3", BuiltinRequestDuration, nil, "write a MetricTemplate"},
		{"smi:v1alpha3:linkerd", BuiltinRequestSuccessRate, []string{`response_total{`, `direction="inbound"`}, ""},
		{"smi:v1alpha2:osm", BuiltinRequestDuration, []string{`osm_request_duration_ms_bucket{`}, ""},
		{"istio", "error-rate", nil, `metric "error-rate" is neither builtin for provider "istio" nor backed by a templateRef (the builtin metrics are request-success-rate and request-duration)`},
	} {
		t.Run(tc.provider+"/"+tc.metric, func(t *testing.T) {
			got, err := builtinQuery(tc.provider, tc.metric)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("got %q, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.want {
				if !strings.Contains(got, s) {
					t.Errorf("query %s does not contain %s", got, s)
				}
			}
		})
	}
}
