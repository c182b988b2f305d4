package cli

import (
	"encoding/json"
	"strings"
	"testing"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// writeTeam writes six Canaries in different states into ns, labelled
// team=<ns>.
func writeTeam(t *testing.T, ns string) {
	t.Helper()
	for _, c := range []struct{ name, scenario string }{
		{"auth", "progressing-failed-check"},
		{"cart", "invalid-target"},
		{"catalog", "succeeded"},
		{"checkout", "progressing-failed-check"},
		{"payments", "failed-threshold"},
		{"search", "waiting-promotion"},
	} {
		p := scenarios[c.scenario](ns)
		p.name, p.labels = c.name, map[string]string{"team": ns}
		if c.name == "auth" {
			p.spec.Suspend = true
		}
		if c.name == "catalog" {
			p.spec.Provider = flaggerv1beta1.ProviderKubernetes
			p.spec.Analysis.Iterations, p.spec.Analysis.StepWeight, p.spec.Analysis.MaxWeight = ptrInt32(5), nil, nil
		}
		rebase(p)
		writeCanary(t, p)
	}
}

func TestList_PrintsEveryCanaryOfTheNamespace(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "list-team")
	writeTeam(t, ns)
	golden(t, "list", sluice(t, "list", "-n", ns).ok(t).out)
	golden(t, "list-wide", sluice(t, "list", "-n", ns, "-o", "wide").ok(t).out)
	golden(t, "list-name", sluice(t, "list", "-n", ns, "-o", "name").ok(t).out)
}

func TestList_AllNamespacesWithSelector(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "list-all")
	writeTeam(t, ns)
	golden(t, "list-all-namespaces", sluice(t, "list", "-A", "-l", "team=list-all").ok(t).out)
	r := sluice(t, "list", "-A", "-l", "team=nobody").ok(t)
	if r.out != "" || !strings.Contains(r.err, "No canaries found in any namespace.") {
		t.Errorf("an empty list printed %q, stderr %q", r.out, r.err)
	}
}

func TestList_OutputJSONIsACanaryList(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "list-json")
	writeTeam(t, ns)
	r := sluice(t, "list", "-n", ns, "-o", "json").ok(t)
	var list flaggerv1beta1.CanaryList
	if err := json.Unmarshal([]byte(r.out), &list); err != nil {
		t.Fatalf("-o json is not a CanaryList: %v\n%s", err, r.out)
	}
	if len(list.Items) != 6 || list.Items[4].Name != "payments" || list.Items[4].Status.Phase != flaggerv1beta1.CanaryPhaseFailed {
		t.Errorf("-o json items = %d, want the six Canaries with payments Failed", len(list.Items))
	}
	for _, cd := range list.Items {
		if cd.Kind != "Canary" || cd.APIVersion != "flagger.app/v1beta1" {
			t.Errorf("item %s has kind %q apiVersion %q", cd.Name, cd.Kind, cd.APIVersion)
		}
	}
	y := sluice(t, "list", "-n", ns, "-o", "yaml").ok(t)
	if !strings.Contains(y.out, "kind: CanaryList") || !strings.Contains(y.out, "name: payments") {
		t.Errorf("-o yaml:\n%s", y.out)
	}
}

func TestList_RejectsAnUnknownOutputFormat(t *testing.T) {
	t.Parallel()
	sluice(t, "list", "-o", "xml").failsWith(t, "-o xml")
}
