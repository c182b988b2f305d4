//go:build e2e

package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/fields"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// observation is one version of a Canary's status, as the watch delivered
// it.
type observation struct {
	at                          time.Time
	rv                          string
	phase                       string
	weight, iterations, failed  int32
	applied, promoted           string
	lastAnalysis, stepStartedAt time.Time
	message                     string
	checks                      []flaggerv1beta1.CanaryCheckResult
}

// templateChange is a change of a primary Deployment's pod template.
type templateChange struct {
	at         time.Time
	generation int64
	image      string
	errorRate  float64
	hash       string
}

// recorder watches every Canary and every primary Deployment and keeps
// each version it sees, with the time it saw it: the cluster's own record
// that the checks read afterwards.
type recorder struct {
	mu        sync.Mutex
	canaries  map[string][]observation
	templates map[string][]templateChange
	// phases receives every phase change, without blocking.
	phases chan phaseChange
}

// phaseChange is a Canary entering a phase.
type phaseChange struct {
	ns, phase string
	at        time.Time
}

// startRecorder starts the watches and returns once they listed what
// exists. They end with ctx, reconnecting through API server restarts.
func startRecorder(ctx context.Context) (*recorder, error) {
	rec := &recorder{
		canaries:  map[string][]observation{},
		templates: map[string][]templateChange{},
		phases:    make(chan phaseChange, 64),
	}
	c, err := cache.New(suite.cluster.Config, cache.Options{
		Scheme:           suite.cluster.Scheme,
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}: {Field: fields.OneTermEqualSelector("metadata.name", app+"-primary")},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the recorder's cache: %w", err)
	}
	canaries, err := c.GetInformer(ctx, &flaggerv1beta1.Canary{})
	if err != nil {
		return nil, err
	}
	if _, err := canaries.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { rec.canary(o) },
		UpdateFunc: func(_, o any) { rec.canary(o) },
	}); err != nil {
		return nil, err
	}
	deployments, err := c.GetInformer(ctx, &appsv1.Deployment{})
	if err != nil {
		return nil, err
	}
	if _, err := deployments.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { rec.primary(o) },
		UpdateFunc: func(_, o any) { rec.primary(o) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the recorder's watches did not sync: %w", ctx.Err())
	}
	return rec, nil
}

// canary records a Canary's status when it is a new version.
func (rec *recorder) canary(o any) {
	cd, ok := o.(*flaggerv1beta1.Canary)
	if !ok {
		return
	}
	s := cd.Status
	ob := observation{
		at: time.Now(), rv: cd.ResourceVersion, phase: string(s.Phase),
		weight: s.CanaryWeight, iterations: s.Iterations, failed: s.FailedChecks,
		applied: s.LastAppliedSpec, promoted: s.LastPromotedSpec,
		checks: append([]flaggerv1beta1.CanaryCheckResult(nil), s.Analysis...),
	}
	if s.LastAnalysisTime != nil {
		ob.lastAnalysis = s.LastAnalysisTime.Time
	}
	if s.StepStartedAt != nil {
		ob.stepStartedAt = s.StepStartedAt.Time
	}
	for _, c := range s.Conditions {
		if c.Type == flaggerv1beta1.PromotedType {
			ob.message = c.Message
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	hist := rec.canaries[cd.Namespace]
	if n := len(hist); n > 0 && hist[n-1].rv == ob.rv {
		return // a resync or a relist: nothing new
	}
	if n := len(hist); n == 0 || hist[n-1].phase != ob.phase {
		select {
		case rec.phases <- phaseChange{ns: cd.Namespace, phase: ob.phase, at: ob.at}:
		default:
		}
	}
	rec.canaries[cd.Namespace] = append(hist, ob)
}

// primary records a primary Deployment's pod template when it changed.
func (rec *recorder) primary(o any) {
	d, ok := o.(*appsv1.Deployment)
	if !ok || len(d.Spec.Template.Spec.Containers) == 0 {
		return
	}
	raw, _ := json.Marshal(d.Spec.Template)
	sum := sha256.Sum256(raw)
	ch := templateChange{
		at: time.Now(), generation: d.Generation, image: d.Spec.Template.Spec.Containers[0].Image,
		errorRate: errorRateOf(&d.Spec.Template), hash: hex.EncodeToString(sum[:8]),
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	hist := rec.templates[d.Namespace]
	if n := len(hist); n > 0 && hist[n-1].hash == ch.hash {
		return
	}
	rec.templates[d.Namespace] = append(hist, ch)
}

// latest is the last status seen of the lane's Canary.
func (rec *recorder) latest(ns string) observation {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	hist := rec.canaries[ns]
	if len(hist) == 0 {
		return observation{}
	}
	return hist[len(hist)-1]
}

// history returns copies of what was recorded for a namespace.
func (rec *recorder) history(ns string) ([]observation, []templateChange) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]observation(nil), rec.canaries[ns]...), append([]templateChange(nil), rec.templates[ns]...)
}
