package meshsim

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The pod annotations (copied from the pod template) that shape a
// version's answers.
const (
	// AnnotationErrorRate is the probability, 0 to 1, that a pod answers
	// a request with 500. Default 0.
	AnnotationErrorRate = "sim.sluice.dev/error-rate"
	// AnnotationLatency is how long, in milliseconds, a pod takes to
	// answer, give or take 10%. Default 5.
	AnnotationLatency = "sim.sluice.dev/latency-ms"
	// revisionLabel is the label of a pod's revision (ReplicaSet).
	revisionLabel = "pod-template-hash"
)

// defaultLatency is a pod's latency without AnnotationLatency.
const defaultLatency = 5 * time.Millisecond

// The response headers that say who answered a request.
const (
	// HeaderVersion is "primary", "canary" or "baseline": the version the
	// request was routed to.
	HeaderVersion = "X-Sim-Version"
	// HeaderPod is the name of the pod that answered.
	HeaderPod = "X-Sim-Pod"
	// HeaderRevision is the pod-template-hash of the pod that answered.
	HeaderRevision = "X-Sim-Revision"
	// headerService tells a backend which Service the proxy routed to.
	headerService = "X-Sim-Service"
)

// pod is a Running and Ready pod and how it answers.
type pod struct {
	name, revision string
	labels         map[string]string
	errorRate      float64
	latency        time.Duration
}

// podOf reads a pod's behaviour from its annotations. Values that do not
// parse take the defaults; error rates are clamped to [0, 1].
func podOf(p *corev1.Pod) pod {
	out := pod{name: p.Name, revision: p.Labels[revisionLabel], labels: p.Labels, latency: defaultLatency}
	if v, err := strconv.ParseFloat(p.Annotations[AnnotationErrorRate], 64); err == nil {
		out.errorRate = min(max(v, 0), 1)
	}
	if v, err := strconv.ParseFloat(p.Annotations[AnnotationLatency], 64); err == nil && v >= 0 {
		out.latency = time.Duration(v * float64(time.Millisecond))
	}
	return out
}

// ready reports whether a pod receives traffic: Running, Ready and not
// being deleted.
func ready(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// backend is the HTTP server of one version: each request goes to one of
// the version's ready pods, at random, which answers as its annotations
// say, and the pod's sidecar counts it (reporter="destination").
type backend struct {
	sim      *Sim
	version  version
	workload string
}

// ServeHTTP answers as a random ready pod of the version would.
func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	pods := b.sim.current().ready[b.version]
	w.Header().Set(HeaderVersion, b.version.String())
	if len(pods) == 0 {
		http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
		return
	}
	p := pods[rand.IntN(len(pods))]
	jitter := 0.9 + 0.2*rand.Float64()
	t := time.NewTimer(time.Duration(float64(p.latency) * jitter))
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
		return
	}
	code := http.StatusOK
	if rand.Float64() < p.errorRate {
		code = http.StatusInternalServerError
	}
	w.Header().Set(HeaderPod, p.name)
	w.Header().Set(HeaderRevision, p.revision)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, "%s %s %s\n", b.version, p.name, p.revision)
	b.sim.metrics.record(hop{
		destination: true, namespace: b.sim.opts.Namespace, workload: b.workload,
		service: b.service(r), pod: &p, code: code, flags: "-", elapsed: time.Since(start),
	})
}

// service is the Service the front proxy routed the request to.
func (b *backend) service(r *http.Request) string {
	if s := r.Header.Get(headerService); s != "" {
		return s
	}
	return b.sim.service(b.version)
}
