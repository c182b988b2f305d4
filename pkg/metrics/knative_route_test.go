package metrics

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/testenv"
	knativev1 "github.com/sluicedev/sluice/pkg/apis/knative/v1"
)

// TestClusterResolver_RouteOfAKnativeTargetIsItsLatestRevision checks that
// {{ route }} is, as in Flagger, the latest created revision of a Knative
// Service target, in MetricTemplates and in the builtin knative queries,
// and stays spec.routeRef or the target for other targets.
func TestClusterResolver_RouteOfAKnativeTargetIsItsLatestRevision(t *testing.T) {
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("..", "router", "testdata", "crds", "serving.knative.dev_services.yaml")}, ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatal(err)
	}
	scheme, err := testenv.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	if err := knativev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create(t, namespace("kn"),
		metricTemplate("kn", "revision-errors", flaggerv1beta1.MetricTemplateProvider{Type: "prometheus", Address: "http://prometheus.invalid"},
			`sum(rate(errors_total{namespace="{{ namespace }}", revision="{{ route }}"}[{{ interval }}]))`))
	svc := &knativev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kn", Name: "podinfo"}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), svc) })
	svc.Status.LatestCreatedRevisionName = "podinfo-00003"
	if err := c.Status().Update(ctx, svc); err != nil {
		t.Fatal(err)
	}

	r := NewResolver(c, ResolverConfig{MetricsServer: "http://prometheus.invalid"})
	target := func(apiVersion, name string) *flaggerv1beta1.Canary {
		cd := &flaggerv1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "kn", Name: name}, Spec: flaggerv1beta1.CanarySpec{
			Provider:  flaggerv1beta1.ProviderKnative,
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: apiVersion, Kind: "Service", Name: name},
		}}
		if apiVersion != flaggerv1beta1.KnativeServiceAPIVersion {
			cd.Spec.Provider, cd.Spec.TargetRef.Kind = flaggerv1beta1.ProviderIstio, "Deployment"
		}
		return cd
	}
	tmpl := flaggerv1beta1.CanaryMetric{Name: "errors", Interval: "1m", TemplateRef: &flaggerv1beta1.CrossNamespaceObjectReference{Name: "revision-errors"}}
	builtin := flaggerv1beta1.CanaryMetric{Name: BuiltinRequestSuccessRate, Interval: "1m"}
	for _, tc := range []struct {
		name   string
		cd     *flaggerv1beta1.Canary
		metric flaggerv1beta1.CanaryMetric
		want   string
	}{
		{"a MetricTemplate of a Knative target", target(flaggerv1beta1.KnativeServiceAPIVersion, "podinfo"), tmpl, `revision="podinfo-00003"`},
		{"the builtin knative query", target(flaggerv1beta1.KnativeServiceAPIVersion, "podinfo"), builtin, `envoy_cluster_name=~"kn/podinfo-00003"`},
		{"a Deployment target keeps its name", target("apps/v1", "podinfo"), tmpl, `revision="podinfo"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, query, err := r.Resolve(ctx, tc.cd, tc.metric)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(query, tc.want) {
				t.Errorf("query %s does not contain %s", query, tc.want)
			}
		})
	}
	_, _, err = r.Resolve(ctx, target(flaggerv1beta1.KnativeServiceAPIVersion, "gone"), tmpl)
	if err == nil || !strings.Contains(err.Error(), `metric "errors": reading the Knative Service kn/gone for {{ route }}`) {
		t.Errorf("a missing Knative Service: %v, want an error naming the metric and the Service", err)
	}
}
