package router_test

import (
	"testing"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func TestEnsureServices_SetsMetadataOfEachService(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) {
		s.Service.Apex = &flaggerv1beta1.CustomMetadata{
			Labels:      map[string]string{"role": "apex"},
			Annotations: map[string]string{"note": "apex", "kustomize.toolkit.fluxcd.io/reconcile": "disabled"},
		}
		s.Service.Primary = &flaggerv1beta1.CustomMetadata{Labels: map[string]string{"role": "primary"}}
		s.Service.Canary = &flaggerv1beta1.CustomMetadata{Annotations: map[string]string{"note": "canary"}}
	})
	ensureServices(t, cd, podinfo)
	for _, tc := range []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
	}{
		{name: "podinfo", labels: map[string]string{"app": "podinfo", "role": "apex"}, annotations: map[string]string{"note": "apex"}},
		{name: "podinfo-primary", labels: map[string]string{"app": "podinfo-primary", "role": "primary"}},
		{name: "podinfo-canary", labels: map[string]string{"app": "podinfo-canary"}, annotations: map[string]string{"note": "canary"}},
	} {
		svc := getService(t, ns, tc.name)
		if diff := cmpDiff(tc.labels, svc.Labels); diff != "" {
			t.Errorf("%s labels (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmpDiff(tc.annotations, svc.Annotations); diff != "" {
			t.Errorf("%s annotations (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestEnsureServices_ManagesOnlyItsOwnMetadataKeys(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) {
		s.Service.Apex = &flaggerv1beta1.CustomMetadata{
			Labels:      map[string]string{"tier": "web"},
			Annotations: map[string]string{"owner": "team-a"},
		}
	})
	ensureServices(t, cd, podinfo)

	// Someone else adds their own keys and changes one of Sluice's.
	patchAs(t, getService(t, ns, "podinfo"),
		`{"metadata":{"labels":{"team":"b"},"annotations":{"lb.example.com/id":"42","owner":"team-b"}}}`)

	// The spec drops tier and owner, and hands lb.example.com/id and
	// the label tier over to others while still asking for them.
	cd.Spec.Service.Apex = &flaggerv1beta1.CustomMetadata{
		Labels:      map[string]string{"stage": "prod"},
		Annotations: map[string]string{"lb.example.com/id": "sluice"},
	}
	cd.Spec.Service.UnmanagedMetadata = &flaggerv1beta1.UnmanagedMetadata{Annotations: []string{"lb.example.com/id"}}
	ensureServices(t, cd, podinfo)

	svc := getService(t, ns, "podinfo")
	wantLabels := map[string]string{"app": "podinfo", "stage": "prod", "team": "b"}
	if diff := cmpDiff(wantLabels, svc.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	// owner was last set by someone else, so it is theirs and stays.
	wantAnnotations := map[string]string{"lb.example.com/id": "42", "owner": "team-b"}
	if diff := cmpDiff(wantAnnotations, svc.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}
