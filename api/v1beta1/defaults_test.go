package v1beta1_test

import (
	"context"
	"testing"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// TestDefaults_AreAppliedByTheAPIServer creates a Canary that leaves every
// defaulted field unset and reads back the values the CRD fills in.
func TestDefaults_AreAppliedByTheAPIServer(t *testing.T) {
	ns := newNamespace(t)
	u := decode(t, `
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: defaults
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service:
    port: 9898
    gatewayRefs: [{name: public}]
    mirror: [{backendRef: {name: shadow, port: 80}}]
  analysis:
    interval: 1m
    threshold: 3
    iterations: 5
    metrics: [{name: request-success-rate, thresholdRange: {min: 99}}]
    alerts: [{name: on-call, providerRef: {name: slack}}]
    sessionAffinity: {cookieName: canary}
`)
	u.SetNamespace(ns)
	ctx := context.Background()
	if err := env.Client.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	var c flaggerv1beta1.Canary
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), &c); err != nil {
		t.Fatal(err)
	}
	a := c.Spec.Analysis
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"spec.progressDeadlineSeconds", ptr.Deref(c.Spec.ProgressDeadlineSeconds, 0), int32(600)},
		{"spec.analysis.primaryReadyThreshold", ptr.Deref(a.PrimaryReadyThreshold, 0), int32(100)},
		{"spec.analysis.canaryReadyThreshold", ptr.Deref(a.CanaryReadyThreshold, 0), int32(100)},
		{"spec.analysis.metrics[0].interval", a.Metrics[0].Interval, "1m"},
		{"spec.analysis.alerts[0].severity", a.Alerts[0].Severity, flaggerv1beta1.SeverityInfo},
		{"spec.analysis.sessionAffinity.maxAge", a.SessionAffinity.MaxAge, int32(86400)},
		{"spec.service.gatewayRefs[0].group", ptr.Deref(c.Spec.Service.GatewayRefs[0].Group, ""), "gateway.networking.k8s.io"},
		{"spec.service.gatewayRefs[0].kind", ptr.Deref(c.Spec.Service.GatewayRefs[0].Kind, ""), "Gateway"},
		{"spec.service.mirror[0].backendRef.group", ptr.Deref(c.Spec.Service.Mirror[0].BackendRef.Group, "unset"), ""},
		{"spec.service.mirror[0].backendRef.kind", ptr.Deref(c.Spec.Service.Mirror[0].BackendRef.Kind, ""), "Service"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want the default %v", tt.field, tt.got, tt.want)
		}
	}
}
