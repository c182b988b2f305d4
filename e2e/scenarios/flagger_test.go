//go:build e2e

package scenarios

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// flaggerManifests are a Flagger user's MetricTemplate and Canary from
// Flagger's Istio tutorial and metrics docs (the shapes of
// api/v1beta1/testdata/compat/docs-metrics-6.yaml and
// docs-istio-progressive-delivery-3.yaml), as they are except for what a
// local run must change: the addresses, the namespaces and the analysis
// interval (1m there, the 10s minimum here). The tutorial's acceptance
// test (curl | grep through bash) is left out: the load tester runs only
// hey unless told otherwise, and nothing answers /token.
const flaggerMetricTemplate = `
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: not-found-percentage
  namespace: istio-system
spec:
  provider:
    type: prometheus
    address: http://prometheus.istio-system:9090
  query: |
    100 - sum(
        rate(
            istio_requests_total{
              reporter="destination",
              destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}",
              response_code!="404"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            istio_requests_total{
              reporter="destination",
              destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}"
            }[{{ interval }}]
        )
    ) * 100
`

const flaggerCanary = `
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
    gateways:
    - istio-system/public-gateway
    - mesh
    hosts:
    - app.example.com
    trafficPolicy:
      tls:
        mode: DISABLE
    retries:
      attempts: 3
      perTryTimeout: 1s
      retryOn: "gateway-error,connect-failure,refused-stream"
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-success-rate
      thresholdRange:
        min: 99
      interval: 1m
    - name: request-duration
      thresholdRange:
        max: 500
      interval: 30s
    - name: "404s percentage"
      templateRef:
        name: not-found-percentage
        namespace: istio-system
      thresholdRange:
        max: 5
      interval: 1m
    webhooks:
      - name: load-test
        url: http://flagger-loadtester.test/
        timeout: 5s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"
`

// TestFlagger_UsersManifestsPromote: the manifests a Flagger user writes
// for Istio, a Prometheus MetricTemplate with {{ namespace }} and
// {{ target }} and a load-test webhook, promote a healthy release.
func TestFlagger_UsersManifestsPromote(t *testing.T) {
	t.Parallel()
	s := newScenario(t, true)
	local := strings.NewReplacer(
		"http://prometheus.istio-system:9090", s.prom.URL,
		"http://flagger-loadtester.test/", s.loadTester+"/",
		"http://podinfo-canary.test:9898/", s.sim.ProxyURL+"/",
		"namespace: istio-system", "namespace: "+s.ns,
		"namespace: test", "namespace: "+s.ns,
		"interval: 1m\n    threshold", "interval: 10s\n    threshold",
	)
	var mt flaggerv1beta1.MetricTemplate
	if err := yaml.UnmarshalStrict([]byte(local.Replace(flaggerMetricTemplate)), &mt); err != nil {
		t.Fatalf("reading the MetricTemplate: %v", err)
	}
	var cd flaggerv1beta1.Canary
	if err := yaml.UnmarshalStrict([]byte(local.Replace(flaggerCanary)), &cd); err != nil {
		t.Fatalf("reading the Canary: %v", err)
	}
	s.initialize(&cd, &mt)

	s.release("6.1.0", 0)
	s.waitProgressing()
	s.waitPhase(flaggerv1beta1.CanaryPhaseSucceeded, 3*time.Minute, nil)
	if got := s.primaryImage(); got != image+"6.1.0" {
		t.Errorf("primary image = %s, want %s6.1.0", got, image)
	}
	got, err := s.canary()
	if err != nil {
		t.Fatal(err)
	}
	if v := lastValue(got.Status.Analysis, "404s percentage"); v != 0 {
		t.Errorf("last 404s percentage = %v, want 0 (measured through the MetricTemplate)", v)
	}
	s.expectAllTrafficToPrimary()
}
