package controller

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// statusMemory keeps, per Canary, the status fields Sluice adds to
// Flagger's, for clusters that still run Flagger's own Canary CRD: its
// status schema does not preserve unknown fields, so the API server drops
// them on every write. Sluice then keeps them in memory and puts them back
// on each read. What is lost is only what a restart forgets: the analysis
// timers start again (a wait restarts its deadline, a step may run early)
// and the check history is empty; nothing is promoted or rolled back on
// account of it.
type statusMemory struct {
	m sync.Map // types.NamespacedName -> sluiceFields
}

// sluiceFields are the status fields Flagger's CRD lacks.
type sluiceFields struct {
	observedGeneration int64
	lastAnalysisTime   *metav1.Time
	waitingSince       *metav1.Time
	stepStartedAt      *metav1.Time
	lastRequest        *flaggerv1beta1.CanaryRequestStatus
	analysis           []flaggerv1beta1.CanaryCheckResult
}

// fill puts the remembered fields back into a status read from the API
// server, where it lacks them.
func (m *statusMemory) fill(key types.NamespacedName, s *flaggerv1beta1.CanaryStatus) {
	v, ok := m.m.Load(key)
	if !ok {
		return
	}
	f := v.(sluiceFields)
	if s.ObservedGeneration == 0 {
		s.ObservedGeneration = f.observedGeneration
	}
	if s.LastAnalysisTime == nil {
		s.LastAnalysisTime = f.lastAnalysisTime.DeepCopy()
	}
	if s.WaitingSince == nil {
		s.WaitingSince = f.waitingSince.DeepCopy()
	}
	if s.StepStartedAt == nil {
		s.StepStartedAt = f.stepStartedAt.DeepCopy()
	}
	if s.LastRequest == nil {
		s.LastRequest = f.lastRequest.DeepCopy()
	}
	if s.Analysis == nil {
		for _, c := range f.analysis {
			s.Analysis = append(s.Analysis, *c.DeepCopy())
		}
	}
}

// store remembers the fields of a status that was written.
func (m *statusMemory) store(key types.NamespacedName, s flaggerv1beta1.CanaryStatus) {
	c := s.DeepCopy()
	m.m.Store(key, sluiceFields{
		observedGeneration: c.ObservedGeneration, lastAnalysisTime: c.LastAnalysisTime, waitingSince: c.WaitingSince,
		stepStartedAt: c.StepStartedAt, lastRequest: c.LastRequest, analysis: c.Analysis,
	})
}

// forget drops what is remembered of a Canary that is gone.
func (m *statusMemory) forget(key types.NamespacedName) { m.m.Delete(key) }
