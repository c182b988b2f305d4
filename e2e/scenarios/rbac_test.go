//go:build e2e

package scenarios

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicedev/sluice/e2e/install"
)

// notExercised are permissions of the ClusterRole that the code uses on
// paths no scenario takes, with the reason: "group/resource" for every
// verb, or "group/resource verb". The core group is written "core".
var notExercised = map[string]string{
	"apps/daemonsets create":                     "no scenario targets a DaemonSet (owned DaemonSets are watched)",
	"apps/daemonsets patch":                      "no scenario targets a DaemonSet (owned DaemonSets are watched)",
	"autoscaling/horizontalpodautoscalers":       "no scenario has an HPA",
	"networking.k8s.io/ingresses create":         "no NGINX scenario (Ingresses are watched)",
	"networking.k8s.io/ingresses get":            "no NGINX scenario (Ingresses are watched)",
	"networking.k8s.io/ingresses patch":          "no NGINX scenario (Ingresses are watched)",
	"projectcontour.io/httpproxies":              "no Contour scenario",
	"split.smi-spec.io/trafficsplits":            "no SMI or Linkerd scenario",
	"traefik.io/traefikservices":                 "no Traefik scenario",
	"metrics.keptn.sh/analyses":                  "no Keptn metric",
	"metrics.keptn.sh/keptnmetrics":              "no Keptn metric",
	"flagger.app/alertproviders":                 "no scenario sends alerts",
	"flagger.app/canaries/finalizers":            "no scenario sets revertOnDeletion",
	"core/secrets get":                           "a tracked Secret is read by name; no scenario tracks a Secret",
	"core/secrets create":                        "a tracked Secret is copied for the primary; no scenario tracks a Secret",
	"core/secrets patch":                         "a tracked Secret's copy is patched; no scenario tracks a Secret",
	"networking.istio.io/destinationrules patch": "a DestinationRule is patched when its spec changes; no scenario changes trafficPolicy",

	"apisix.apache.org/apisixroutes":  "no APISIX scenario",
	"appmesh.k8s.aws/virtualnodes":    "no App Mesh scenario",
	"appmesh.k8s.aws/virtualrouters":  "no App Mesh scenario",
	"appmesh.k8s.aws/virtualservices": "no App Mesh scenario",
	"gateway.solo.io/routetables":     "no Gloo scenario",
	"gloo.solo.io/upstreams":          "no Gloo scenario",
	"kuma.io/trafficroutes":           "no Kuma scenario",
	"serving.knative.dev/revisions":   "no Knative scenario",
	"serving.knative.dev/services":    "no Knative scenario",
	"keda.sh/scaledobjects":           "no scenario has a KEDA ScaledObject",
	"external.metrics.k8s.io/*":       "no externalmetrics MetricTemplate",

	"networking.istio.io/destinationrules delete": "the baseline's DestinationRule is deleted when a Canary drops analysis.baseline; no scenario does",
}

// unusedByCode are permissions the ClusterRole grants that no code path
// of Sluice uses: findings of this check, kept in view until the RBAC
// markers in pkg/controller/rbac.go drop them (the test fails once one is
// used, so the list only shrinks). Reads go through the informer cache (no
// get). The update verbs (writes are patches), events.k8s.io (events are
// core/v1) and canaries/status get were dropped from the markers after this
// check found them unused; gets stay, for a cache miss.
var unusedByCode = map[string]string{
	"core/services get":                        "reads come from the cache",
	"apps/daemonsets get":                      "reads come from the cache",
	"gateway.networking.k8s.io/httproutes get": "reads come from the cache",
	"networking.istio.io/destinationrules get": "reads come from the cache",
	"networking.istio.io/virtualservices get":  "reads come from the cache",
}

// raceDependent are permissions whose use depends on timing, so a run may
// or may not make the request; the check neither requires nor forbids them.
var raceDependent = map[string]string{
	"flagger.app/canaries get":        "read from the cache; from the API server only when the cache cannot answer yet (cmd/sluice/reader.go)",
	"flagger.app/metrictemplates get": "read from the cache; from the API server only when the cache cannot answer yet (cmd/sluice/reader.go)",
	"apps/deployments get":            "a target the Deployment informer cached before its Canary's informer registered it is read once from the API server (pkg/cachescope); whether that happens depends on which informer syncs first",
}

// triple is one permission: API group, resource (with /subresource) and
// verb.
type triple struct{ group, resource, verb string }

func (t triple) String() string {
	g := t.group
	if g == "" {
		g = "core"
	}
	return fmt.Sprintf("%s/%s %s", g, t.resource, t.verb)
}

// resourceKey is "group/resource", the core group written "core".
func (t triple) resourceKey() string {
	return strings.TrimSuffix(t.String(), " "+t.verb)
}

// listed returns the reason a table gives for t, by verb or for every verb.
func listed(table map[string]string, t triple) (string, bool) {
	if why, ok := table[t.String()]; ok {
		return why, true
	}
	why, ok := table[t.resourceKey()]
	return why, ok
}

// checkRBAC compares the requests Sluice made under its ServiceAccount, from
// the API server's audit log, with the installed ClusterRole: a request the
// API server forbade is a missing rule; a rule no request used is an unused
// one, unless notExercised names its resource. Unused rules are only judged
// when every scenario ran (no -run). It prints what was used.
func checkRBAC(ctx context.Context) error {
	events, err := suite.cluster.ReadAudit()
	if err != nil {
		return err
	}
	used := map[triple]int{}
	forbidden := map[triple]string{} // the first URI of each
	var problems []string
	for _, e := range events {
		if e.User.Username != install.User || e.ObjectRef == nil {
			continue // another ServiceAccount, or discovery
		}
		res := e.ObjectRef.Resource
		if e.ObjectRef.Subresource != "" {
			res += "/" + e.ObjectRef.Subresource
		}
		tr := triple{e.ObjectRef.APIGroup, res, e.Verb}
		used[tr]++
		if e.ResponseStatus != nil && e.ResponseStatus.Code == 403 {
			if forbidden[tr] == "" {
				forbidden[tr] = e.RequestURI
			}
		}
	}
	for tr, uri := range forbidden {
		problems = append(problems, fmt.Sprintf("missing: %s was forbidden %d times (first: %s)", tr, used[tr], uri))
	}
	if len(used) == 0 {
		return fmt.Errorf("the audit log %s holds no request of %s: the check sees nothing", suite.cluster.AuditLogPath, install.User)
	}

	var role rbacv1.ClusterRole
	if err := suite.cluster.Client.Get(ctx, client.ObjectKey{Name: "sluice"}, &role); err != nil {
		return fmt.Errorf("reading the installed ClusterRole: %w", err)
	}
	granted := map[triple]bool{}
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					granted[triple{g, res, v}] = true
				}
			}
		}
	}
	var report []string
	for tr, n := range used {
		report = append(report, fmt.Sprintf("%s: %d requests", tr, n))
		if _, seen := forbidden[tr]; !granted[tr] && !seen {
			problems = append(problems, fmt.Sprintf("missing: %s was used but no rule grants it", tr))
		}
	}
	all := flag.Lookup("test.run").Value.String() == ""
	isUsed := func(tr triple) bool {
		// Informers start with a streaming watch (sendInitialEvents) and
		// fall back to list: a used watch needs list too.
		return used[tr] > 0 || (tr.verb == "list" && used[triple{tr.group, tr.resource, "watch"}] > 0)
	}
	for tr := range granted {
		if why, ok := listed(raceDependent, tr); ok {
			report = append(report, fmt.Sprintf("%s: %d requests (depends on timing: %s)", tr, used[tr], why))
			continue
		}
		if isUsed(tr) {
			if why, ok := listed(notExercised, tr); ok && all {
				problems = append(problems, fmt.Sprintf("%s is listed as not exercised (%s) but a scenario used it: remove it from notExercised", tr, why))
			}
			if why, ok := listed(unusedByCode, tr); ok && all {
				problems = append(problems, fmt.Sprintf("%s is listed as unused by the code (%s) but Sluice used it: remove it from unusedByCode", tr, why))
			}
			continue
		}
		if why, ok := listed(notExercised, tr); ok {
			report = append(report, fmt.Sprintf("%s: not exercised: %s", tr, why))
			continue
		}
		if why, ok := listed(unusedByCode, tr); ok {
			report = append(report, fmt.Sprintf("%s: UNUSED by the code (%s): drop it from the RBAC markers", tr, why))
			continue
		}
		report = append(report, fmt.Sprintf("%s: unused", tr))
		if all {
			problems = append(problems, fmt.Sprintf("unused: %s is granted but no scenario used it", tr))
		}
	}
	slices.Sort(report)
	fmt.Printf("e2e: requests of %s by permission (from the audit log):\n  %s\n", install.User, strings.Join(report, "\n  "))
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("the ClusterRole does not match what Sluice used:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}
