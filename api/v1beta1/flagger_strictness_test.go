package v1beta1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicedev/sluice/internal/testenv"
)

// This file compares Sluice's admission with Flagger's. A GitOps tool
// applies a whole set of objects at once, and one rejected object fails the
// set, so Sluice's CRDs must not reject what Flagger's CRDs accept, unless
// the object could never run under Flagger either. Such exceptions are
// listed in the table with the reason, as found in Flagger's source at
// testenv.FlaggerVersion (pkg/apis/flagger/v1beta1, pkg/controller,
// pkg/canary). Everything else that Sluice cannot run is reported at run
// time (pkg/canary.SpecProblem) or warned about
// (kustomize/base/admission-warnings.yaml).
//
// Both API servers are asked with strict field validation, as kubectl
// apply and server-side apply do: a field Flagger does not know (Sluice's
// extensions such as compare, onNoData or a suffix match) is then rejected
// by Flagger's schema, so Sluice's rules on its own fields are free.

// The reasons a spec that Flagger's schema accepts can still never run
// under Flagger, taken from Flagger's source.
const (
	// A number with a fraction in a field Flagger's Go type declares as an
	// integer (int, int32): Flagger's clients cannot decode the Canary, so
	// its informer cannot list Canaries at all.
	neverDecodes = "Flagger's Go type holds an integer: a fraction cannot be decoded, and Flagger's informer then fails to list Canaries"
	// Flagger's syncHandler calls verifyCanary, whose verifySessionAffinity
	// returns an error when cookieName equals primaryCookieName (an unset
	// primaryCookieName is the empty string), and the Canary is never
	// scheduled.
	sameCookies = "Flagger's syncHandler refuses it: verifySessionAffinity errors when cookieName equals primaryCookieName (unset is \"\")"
	// Without a spec, spec.analysis is nil and verifySessionAffinity
	// dereferences it: Flagger's controller panics.
	noSpec = "Flagger's verifySessionAffinity dereferences spec.analysis, which is nil without a spec: the controller panics"
	// Every target controller (GetMetadata or Initialize) reads the target
	// with client-go first, which refuses an empty name ("resource name may
	// not be empty"), so every run stops there.
	emptyTarget = "Flagger reads the target with client-go before anything else, and client-go refuses an empty name"
	// Sluice's Go types hold these numbers as int32 where Flagger's use a
	// 64-bit int. A value beyond int32 would stop Sluice's informer from
	// listing any Canary; no weight, count, percentage or port of a working
	// manifest comes near 2^31. (Where Flagger's type is int32 too, the
	// value never decodes in Flagger either.)
	beyondInt32 = "beyond int32, Sluice's Go type: admitting it would stop Sluice from listing any Canary"
)

// strictCase is one object applied to both API servers.
type strictCase struct {
	name     string
	manifest string
	mutate   []func(*unstructured.Unstructured) error
	// flaggerRejects says what Flagger's schema does with the object, so
	// that a case keeps testing what its name says.
	flaggerRejects bool
	// neverRuns, for an object Flagger's schema accepts, allows Sluice to
	// reject it and says why the object could not run under Flagger.
	neverRuns string
}

type mutation = func(*unstructured.Unstructured) error

// list returns n copies of item, built for each index.
func list(n int, item func(i int) any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = item(i)
	}
	return out
}

// props returns n string matches keyed h0, h1, ...
func props(n int) map[string]any {
	out := map[string]any{}
	for i := range n {
		out[fmt.Sprintf("h%d", i)] = map[string]any{"exact": "x"}
	}
	return out
}

// because marks a case as never running under Flagger, for the reason why.
func because(why string, c strictCase) strictCase {
	c.neverRuns = why
	return c
}

// withoutStepWeight leaves the strategy to the mutations that follow.
var withoutStepWeight = []mutation{remove("spec", "analysis", "stepWeight"), remove("spec", "analysis", "maxWeight")}

func canaryCases() []strictCase {
	analysis := func(f ...string) []string { return append([]string{"spec", "analysis"}, f...) }
	service := func(f ...string) []string { return append([]string{"spec", "service"}, f...) }
	metrics, webhooks, alerts := analysis("metrics"), analysis("webhooks"), analysis("alerts")
	c := func(name string, rejects bool, m ...mutation) strictCase {
		return strictCase{name: name, manifest: validCanary, mutate: m, flaggerRejects: rejects}
	}
	never := func(name, why string, m ...mutation) strictCase {
		return strictCase{name: name, manifest: validCanary, mutate: m, neverRuns: why}
	}
	strategy := func(name string, rejects bool, m ...mutation) strictCase {
		return c(name, rejects, append(append([]mutation{}, withoutStepWeight...), m...)...)
	}
	cases := []strictCase{
		c("the valid base", false),
		never("no spec", noSpec, remove("spec")),
		c("missing targetRef", true, remove("spec", "targetRef")),
		c("missing analysis", true, remove("spec", "analysis")),
		c("unknown provider", true, set("gatewayapi", "spec", "provider")),
		c("unknown target kind", true, set("StatefulSet", "spec", "targetRef", "kind")),
		never("empty target name", emptyTarget, set("", "spec", "targetRef", "name")),
		c("negative progress deadline", false, set(int64(-5), "spec", "progressDeadlineSeconds")),
		c("zero progress deadline", false, set(int64(0), "spec", "progressDeadlineSeconds")),
		never("fractional progress deadline", neverDecodes, set(1.5, "spec", "progressDeadlineSeconds")),

		// The strategy: Flagger's oneOf needs interval, threshold and one of
		// iterations, stepWeight and stepWeights.
		c("missing threshold", true, remove("spec", "analysis", "threshold")),
		c("missing interval", true, remove("spec", "analysis", "interval")),
		c("both iterations and stepWeight", true, set(int64(10), analysis("iterations")...)),
		strategy("no strategy", true),
		strategy("stepWeight and stepWeights", true, set(int64(10), analysis("stepWeight")...), set([]any{int64(10)}, analysis("stepWeights")...)),
		never("fractional threshold", neverDecodes, set(1.5, analysis("threshold")...)),
		strategy("negative iterations", false, set(int64(-1), analysis("iterations")...)),
		strategy("zero iterations", false, set(int64(0), analysis("iterations")...)),
		because(beyondInt32, strategy("iterations beyond int32", false, set(int64(3_000_000_000), analysis("iterations")...))),
		never("threshold beyond int32", beyondInt32, set(int64(3_000_000_000), analysis("threshold")...)),
		never("stepWeight beyond int32", beyondInt32, set(int64(3_000_000_000), analysis("stepWeight")...)),
		never("progress deadline beyond int32", beyondInt32, set(int64(3_000_000_000), "spec", "progressDeadlineSeconds")),
		never("webhook retries beyond int32", beyondInt32, setInList(int64(3_000_000_000), webhooks, "retries")),
		never("cookie maxAge beyond int32", beyondInt32, set(map[string]any{"cookieName": "c", "maxAge": int64(3_000_000_000)}, analysis("sessionAffinity")...)),
		because(neverDecodes, strategy("fractional iterations", false, set(2.5, analysis("iterations")...))),

		// Weights.
		c("maxWeight of 150", false, set(int64(150), analysis("maxWeight")...)),
		c("negative maxWeight", false, set(int64(-5), analysis("maxWeight")...)),
		never("fractional maxWeight", neverDecodes, set(50.5, analysis("maxWeight")...)),
		c("stepWeight of 150", false, set(int64(150), analysis("stepWeight")...)),
		c("stepWeight above maxWeight", false, set(int64(60), analysis("stepWeight")...)),
		c("negative stepWeight", false, set(int64(-1), analysis("stepWeight")...)),
		never("fractional stepWeight", neverDecodes, set(10.5, analysis("stepWeight")...)),
		strategy("stepWeights above 100", false, set([]any{int64(10), int64(150)}, analysis("stepWeights")...)),
		strategy("stepWeights out of order", false, set([]any{int64(50), int64(10)}, analysis("stepWeights")...)),
		strategy("negative stepWeights", false, set([]any{int64(-5), int64(50)}, analysis("stepWeights")...)),
		strategy("empty stepWeights", false, set([]any{}, analysis("stepWeights")...)),
		strategy("101 stepWeights", false, set(list(101, func(i int) any { return int64(i) }), analysis("stepWeights")...)),
		because(neverDecodes, strategy("fractional stepWeights", false, set([]any{5.5}, analysis("stepWeights")...))),
		c("negative stepWeightPromotion", false, set(int64(-1), analysis("stepWeightPromotion")...)),
		c("stepWeightPromotion of 150", false, set(int64(150), analysis("stepWeightPromotion")...)),
		never("fractional stepWeightPromotion", neverDecodes, set(1.5, analysis("stepWeightPromotion")...)),
		c("mirrorWeight of 150", false, set(true, analysis("mirror")...), set(int64(150), analysis("mirrorWeight")...)),
		c("negative mirrorWeight", false, set(true, analysis("mirror")...), set(int64(-1), analysis("mirrorWeight")...)),
		never("fractional mirrorWeight", neverDecodes, set(1.5, analysis("mirrorWeight")...)),
		c("primaryReadyThreshold of 150", false, set(int64(150), analysis("primaryReadyThreshold")...)),
		c("negative primaryReadyThreshold", false, set(int64(-1), analysis("primaryReadyThreshold")...)),
		never("fractional primaryReadyThreshold", neverDecodes, set(99.5, analysis("primaryReadyThreshold")...)),
		c("canaryReadyThreshold of 150", false, set(int64(150), analysis("canaryReadyThreshold")...)),
		c("negative canaryReadyThreshold", false, set(int64(-1), analysis("canaryReadyThreshold")...)),
		never("fractional canaryReadyThreshold", neverDecodes, set(99.5, analysis("canaryReadyThreshold")...)),

		// Durations: Flagger's pattern is ^[0-9]+(m|s), a prefix.
		c("malformed interval", true, set("ten seconds", analysis("interval")...)),
		c("interval in hours", true, set("1h", analysis("interval")...)),
		c("interval with a unit Go cannot parse", false, set("10sec", analysis("interval")...)),
		c("interval with trailing text", false, set("30s please", analysis("interval")...)),
		c("malformed metric interval", true, setInList("1 minute", metrics, "interval")),
		c("metric interval with a unit Go cannot parse", false, setInList("30sec", metrics, "interval")),
		c("malformed webhook timeout", true, setInList("ten", webhooks, "timeout")),
		c("webhook timeout with a unit Go cannot parse", false, setInList("10sec", webhooks, "timeout")),

		// A/B matches.
		c("33 matches", false, set(list(33, func(int) any { return map[string]any{"headers": props(1)} }), analysis("match")...)),
		c("match header with two string matches", true, set([]any{map[string]any{"headers": map[string]any{"x": map[string]any{"exact": "a", "regex": "b"}}}}, analysis("match")...)),
		c("match header without a string match", true, set([]any{map[string]any{"headers": map[string]any{"x": map[string]any{}}}}, analysis("match")...)),
		c("match with 65 headers", false, set([]any{map[string]any{"headers": props(65)}}, analysis("match")...)),
		c("match query parameter with two string matches", true, set([]any{map[string]any{"queryParams": map[string]any{"x": map[string]any{"exact": "a", "prefix": "b"}}}}, analysis("match")...)),
		c("match query parameter with a suffix", true, set([]any{map[string]any{"queryParams": map[string]any{"x": map[string]any{"suffix": "a"}}}}, analysis("match")...)),
		c("match with 65 query parameters", false, set([]any{map[string]any{"queryParams": props(65)}}, analysis("match")...)),

		// Metrics.
		c("65 metrics", false, set(list(65, func(i int) any {
			return map[string]any{"name": fmt.Sprintf("m%d", i), "templateRef": map[string]any{"name": "t"}}
		}), metrics...)),
		c("metric without a name", true, set([]any{map[string]any{"thresholdRange": map[string]any{"min": int64(1)}}}, metrics...)),
		c("metric with an empty name", false, setInList("", metrics, "name")),
		c("threshold range upside down", false, setInList(int64(100), metrics, "thresholdRange", "max"), setInList(int64(200), metrics, "thresholdRange", "min")),
		c("template without a name", true, setInList(map[string]any{"namespace": "x"}, metrics, "templateRef")),
		c("template with an empty name", false, setInList(map[string]any{"name": ""}, metrics, "templateRef")),
		c("unknown onNoData (a Sluice field)", true, setInList("sometimes", metrics, "onNoData")),
		c("compare with a threshold (a Sluice field)", true, setInList(map[string]any{"against": "primary"}, metrics, "compare")),

		// Webhooks.
		c("65 webhooks", false, set(list(65, func(i int) any {
			return map[string]any{"name": fmt.Sprintf("w%d", i), "url": "http://loadtester.test/"}
		}), webhooks...)),
		c("webhook without a url", true, remove("spec", "analysis", "webhooks"), set([]any{map[string]any{"name": "w"}}, webhooks...)),
		c("webhook with an empty name", false, setInList("", webhooks, "name")),
		c("webhook url that is not a URL", false, setInList("not a url", webhooks, "url")),
		c("webhook url with another scheme", false, setInList("ftp://loadtester.test/", webhooks, "url")),
		c("webhook url without a host", false, setInList("http:///gate", webhooks, "url")),
		c("webhook url of 3000 bytes", false, setInList("http://loadtester.test/"+strings.Repeat("a", 3000), webhooks, "url")),
		c("unknown webhook type", true, setInList("pre-promotion", webhooks, "type")),
		c("negative webhook retries", false, setInList(int64(-1), webhooks, "retries")),
		never("fractional webhook retries", neverDecodes, setInList(1.5, webhooks, "retries")),

		// Alerts.
		c("33 alerts", false, set(list(33, func(i int) any {
			return map[string]any{"name": fmt.Sprintf("a%d", i), "providerRef": map[string]any{"name": "p"}}
		}), alerts...)),
		c("alert with an empty name", false, setInList("", alerts, "name")),
		c("alert with an empty provider name", false, setInList(map[string]any{"name": ""}, alerts, "providerRef")),
		c("alert without a provider", true, set([]any{map[string]any{"name": "a"}}, alerts...)),
		c("unknown alert severity", true, setInList("critical", alerts, "severity")),

		// Session affinity.
		never("same session cookie names", sameCookies, set(map[string]any{"cookieName": "c", "primaryCookieName": "c"}, analysis("sessionAffinity")...)),
		never("empty cookie name", sameCookies, set(map[string]any{"cookieName": ""}, analysis("sessionAffinity")...)),
		c("empty cookie name with a primary cookie", false, set(map[string]any{"cookieName": "", "primaryCookieName": "p"}, analysis("sessionAffinity")...)),
		c("session affinity without a cookie name", true, set(map[string]any{"primaryCookieName": "p"}, analysis("sessionAffinity")...)),
		c("negative cookie maxAge", false, set(map[string]any{"cookieName": "c", "maxAge": int64(-1)}, analysis("sessionAffinity")...)),
		never("fractional cookie maxAge", neverDecodes, set(map[string]any{"cookieName": "c", "maxAge": 1.5}, analysis("sessionAffinity")...)),
		c("unknown sameSite", true, set(map[string]any{"cookieName": "c", "sameSite": "Sometimes"}, analysis("sessionAffinity")...)),

		// References.
		c("autoscalerRef with an empty name", false, set(map[string]any{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": ""}, "spec", "autoscalerRef")),
		c("unknown autoscaler kind", true, set(map[string]any{"apiVersion": "autoscaling/v2", "kind": "VerticalPodAutoscaler", "name": "a"}, "spec", "autoscalerRef")),
		c("autoscaler without a name", true, set(map[string]any{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"}, "spec", "autoscalerRef")),
		c("primary scaler with no replicas", true, set(map[string]any{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "a",
			"primaryScalerReplicas": map[string]any{"minReplicas": int64(0)}}, "spec", "autoscalerRef")),
		c("ingressRef with an empty name", false, set(map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": ""}, "spec", "ingressRef")),
		c("unknown ingress kind", true, set(map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "Route", "name": "i"}, "spec", "ingressRef")),
		c("routeRef with an empty name", false, set(map[string]any{"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": ""}, "spec", "routeRef")),
		c("unknown route kind", true, set(map[string]any{"apiVersion": "apisix.apache.org/v2", "kind": "Route", "name": "r"}, "spec", "routeRef")),
		c("upstreamRef with an empty name", false, set(map[string]any{"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": ""}, "spec", "upstreamRef")),
		c("unknown upstream kind", true, set(map[string]any{"apiVersion": "gloo.solo.io/v1", "kind": "Backend", "name": "u"}, "spec", "upstreamRef")),

		// The Service and the routing options.
		c("missing port", true, remove("spec", "service", "port")),
		c("port out of range", false, set(int64(70000), service("port")...)),
		c("port zero", false, set(int64(0), service("port")...)),
		never("fractional port", neverDecodes, set(80.5, service("port")...)),
		c("unknown traffic distribution", true, set("PreferFar", service("trafficDistribution")...)),
		c("loadBalancer simple and consistentHash", true, set(map[string]any{"simple": "RANDOM", "consistentHash": map[string]any{"useSourceIp": true}}, service("trafficPolicy", "loadBalancer")...)),
		c("loadBalancer simple and an empty consistentHash", false, set(map[string]any{"simple": "RANDOM", "consistentHash": map[string]any{}}, service("trafficPolicy", "loadBalancer")...)),
		c("loadBalancer consistentHash with two keys", true, set(map[string]any{"consistentHash": map[string]any{"useSourceIp": true, "httpHeaderName": "x"}}, service("trafficPolicy", "loadBalancer")...)),
		c("loadBalancer with neither", true, set(map[string]any{"warmupDurationSecs": "10s"}, service("trafficPolicy", "loadBalancer")...)),
		c("unknown load balancer", true, set(map[string]any{"simple": "FASTEST"}, service("trafficPolicy", "loadBalancer")...)),
		c("unknown h2 upgrade policy", true, set("ALWAYS", service("trafficPolicy", "connectionPool", "http", "h2UpgradePolicy")...)),
		c("unknown TLS mode", true, set("PLAIN", service("trafficPolicy", "tls", "mode")...)),
		c("CORS origin with two string matches", true, set([]any{map[string]any{"exact": "a", "prefix": "b"}}, service("corsPolicy", "allowOrigins")...)),
		c("mirror to a Service without a port", true, set([]any{map[string]any{"backendRef": map[string]any{"name": "m"}}}, service("mirror")...)),
		c("33 gatewayRefs", true, set(list(33, func(i int) any { return map[string]any{"name": fmt.Sprintf("g%d", i)} }), service("gatewayRefs")...)),
		c("gatewayRef with a bad namespace", true, set([]any{map[string]any{"name": "g", "namespace": "Not_A_Namespace"}}, service("gatewayRefs")...)),
	}
	for _, field := range []string{"uri", "scheme", "method", "authority"} {
		cases = append(cases,
			c("service match "+field+" with two string matches", true, set([]any{map[string]any{field: map[string]any{"exact": "a", "regex": "b"}}}, service("match")...)),
			c("service match "+field+" with a suffix", true, set([]any{map[string]any{field: map[string]any{"suffix": "a"}}}, service("match")...)))
	}
	for _, field := range []string{"headers", "queryParams", "withoutHeaders"} {
		cases = append(cases,
			c("service match "+field+" with two string matches", true, set([]any{map[string]any{field: map[string]any{"x": map[string]any{"exact": "a", "prefix": "b"}}}}, service("match")...)),
			c("service match with 65 "+field, false, set([]any{map[string]any{field: props(65)}}, service("match")...)))
	}
	return cases
}

const validTemplate = `
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: t}
spec:
  provider: {type: prometheus, address: http://prometheus:9090}
  query: up
`

const validAlertProvider = `
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata: {name: p}
spec: {type: slack, channel: general, address: https://hooks.slack.com/services/x}
`

func templateAndProviderCases() []strictCase {
	t := func(name string, rejects bool, m ...mutation) strictCase {
		return strictCase{name: "MetricTemplate " + name, manifest: validTemplate, mutate: m, flaggerRejects: rejects}
	}
	p := func(name string, rejects bool, m ...mutation) strictCase {
		return strictCase{name: "AlertProvider " + name, manifest: validAlertProvider, mutate: m, flaggerRejects: rejects}
	}
	return []strictCase{
		t("the valid base", false),
		t("no spec", false, remove("spec")),
		t("unknown provider", true, set("opentsdb", "spec", "provider", "type")),
		t("provider without a type", true, remove("spec", "provider", "type")),
		t("no query", true, remove("spec", "query")),
		t("empty query", false, set("", "spec", "query")),
		t("secretRef with an empty name", false, set(map[string]any{"name": ""}, "spec", "provider", "secretRef")),
		t("secretRef without a name", true, set(map[string]any{}, "spec", "provider", "secretRef")),
		p("the valid base", false),
		p("no spec", false, remove("spec")),
		p("unknown type", true, set("pagerduty", "spec", "type")),
		p("no type", true, remove("spec", "type")),
		p("neither address nor secretRef", true, remove("spec", "address")),
		p("both address and secretRef", true, set(map[string]any{"name": "s"}, "spec", "secretRef")),
		p("secretRef with an empty name", false, remove("spec", "address"), set(map[string]any{"name": ""}, "spec", "secretRef")),
		p("secretRef without a name", true, remove("spec", "address"), set(map[string]any{}, "spec", "secretRef")),
	}
}

// startFlagger starts an API server with Flagger's CRDs for one test.
func startFlagger(t *testing.T) *testenv.Env {
	t.Helper()
	fenv, err := testenv.Start(testenv.Options{FlaggerCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fenv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return fenv
}

// createIn creates a namespace on the API server of c.
func createIn(t *testing.T, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "strict-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// TestAdmission_IsNoStricterThanFlaggers applies every case to Flagger's
// CRDs and to Sluice's: what Flagger's schema accepts, Sluice's must accept
// too, unless the case says why it could never run under Flagger; what
// Sluice accepts must decode into Sluice's Go types.
func TestAdmission_IsNoStricterThanFlaggers(t *testing.T) {
	fenv := startFlagger(t)
	ctx := context.Background()
	flaggerNS, sluiceNS := createIn(t, fenv.Client), newNamespace(t)

	cases := append(canaryCases(), templateAndProviderCases()...)
	var loosened []string
	for i, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			build := func(ns string) *unstructured.Unstructured {
				u := decode(t, tt.manifest)
				u.SetNamespace(ns)
				u.SetName(fmt.Sprintf("case-%d", i))
				for _, m := range tt.mutate {
					if err := m(u); err != nil {
						t.Fatal(err)
					}
				}
				return u
			}
			ferr := fenv.Client.Create(ctx, build(flaggerNS), client.FieldValidation("Strict"))
			if got := ferr != nil; got != tt.flaggerRejects {
				t.Fatalf("Flagger's schema: rejected=%v, the case expects rejected=%v (error: %v)", got, tt.flaggerRejects, ferr)
			}

			u := build(sluiceNS)
			serr := env.Client.Create(ctx, u, client.FieldValidation("Strict"))
			switch {
			case ferr == nil && serr != nil && tt.neverRuns == "":
				t.Errorf("Sluice rejects what Flagger's schema accepts and Flagger can run:\n%v", serr)
			case ferr == nil && serr == nil && tt.neverRuns != "":
				t.Errorf("Sluice accepts a case listed as never running under Flagger (%s): drop the exception", tt.neverRuns)
			case ferr != nil && serr == nil:
				loosened = append(loosened, tt.name)
			}
			if serr != nil {
				t.Logf("Sluice: %v", serr)
				return
			}
			typed, ok := typedObject(u.GetKind())
			if !ok {
				t.Fatalf("no Go type for %s", u.GetKind())
			}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), typed); err != nil {
				t.Errorf("Sluice accepted the object but cannot read it into its Go type: %v", err)
			}
		})
	}
	t.Logf("Sluice accepts %d cases Flagger's schema rejects: %v", len(loosened), loosened)
}
