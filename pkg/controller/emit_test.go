package controller

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
	"github.com/sluicedev/sluice/pkg/notifier"
)

type capturedAlerts struct{ msgs []notifier.Message }

func (c *capturedAlerts) Post(_ context.Context, m notifier.Message) error {
	c.msgs = append(c.msgs, m)
	return nil
}

func TestEmit_NeverWritesATokenIntoEventsOrAlerts(t *testing.T) {
	rec := record.NewFakeRecorder(4)
	alerts := &capturedAlerts{}
	r := &CanaryReconciler{Recorder: rec, Notifier: alerts}
	cd := &flaggerv1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "podinfo"}}
	leak := "webhook gate: POST http://loadtester.test/gate/check?token=s3cr3t: status 403"
	r.emit(context.Background(), cd, statemachine.Decision{Events: []statemachine.Event{{
		Type: statemachine.Warning, Message: leak,
		Alert: &statemachine.Alert{Severity: flaggerv1beta1.SeverityWarn, Text: "Canary is invalid: " + leak},
	}}})
	event := <-rec.Events
	if strings.Contains(event, "s3cr3t") || len(alerts.msgs) != 1 || strings.Contains(alerts.msgs[0].Text, "s3cr3t") {
		t.Errorf("event %q, alerts %+v: the token leaked", event, alerts.msgs)
	}
}
