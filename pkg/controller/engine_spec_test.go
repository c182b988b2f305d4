package controller

import (
	"fmt"
	"testing"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// A spec Flagger's schema admits and Sluice cannot run is admitted by the
// API server and reported on the Canary, and nothing is created.
func TestEngine_ASpecSluiceCannotRunIsReportedNotRejected(t *testing.T) {
	h := newHarness(t)
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.Metrics[0].ThresholdRange = &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(200.0), Max: ptr.To(100.0)}
	}))
	h.eventually("the Valid condition", func() (bool, string) {
		cd := h.canary("podinfo")
		for _, c := range cd.Status.Conditions {
			if c.Type == flaggerv1beta1.ValidType {
				return c.Status == "False" && c.Reason == string(problem.InvalidSpec), fmt.Sprintf("%+v", c)
			}
		}
		return false, "no Valid condition"
	})
	h.waitEvent("podinfo", "thresholdRange")
	if cd := h.canary("podinfo"); cd.Status.Phase != "" {
		t.Errorf("phase = %q, want nothing started", cd.Status.Phase)
	}
}
