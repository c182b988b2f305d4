package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

const (
	// imageV1 and imageV2 are the two revisions of every workload. KWOK
	// runs any image: nothing is pulled.
	imageV1 = "bench.local/app:1"
	imageV2 = "bench.local/app:2"
	// metricTemplateName is the MetricTemplate every Canary checks.
	metricTemplateName = "bench-success-rate"
	// slowHookPath is the stub's path that answers after the slow delay.
	slowHookPath = "/slow-hook"
)

// targetName is the name of the i-th target Deployment and its Canary.
func targetName(i int) string { return fmt.Sprintf("t-%05d", i) }

// deployment is a Deployment of one container listening on 9898, labelled
// app=name as the kubernetes provider expects.
func deployment(ns, name string, replicas int32, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers: []corev1.Container{{
						Name: "app", Image: image,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
					}},
				},
			},
		},
	}
}

// service is a ClusterIP Service on port 9898 that selects nothing.
func service(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9898}},
		},
	}
}

// metricTemplate is a Prometheus MetricTemplate served by the stub; the
// query names the target, so that the stub can fail chosen revisions.
func metricTemplate(ns, address string) *flaggerv1beta1.MetricTemplate {
	return &flaggerv1beta1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: metricTemplateName},
		Spec: flaggerv1beta1.MetricTemplateSpec{
			Provider: flaggerv1beta1.MetricTemplateProvider{Type: "prometheus", Address: address},
			Query:    `bench_success_rate{namespace="{{ namespace }}",target="{{ target }}"}`,
		},
	}
}

// canarySpec is what every benchmark Canary shares.
type canarySpec struct {
	interval   string
	iterations int32
	threshold  int32
	// slowHook, when set, is the URL of a rollout webhook that answers
	// slowly.
	slowHook string
}

// canary is a blue/green Canary on the kubernetes provider for the target
// Deployment name, checking the stub's metric at every step.
func canary(ns, name string, s canarySpec) *flaggerv1beta1.Canary {
	cd := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: flaggerv1beta1.CanarySpec{
			Provider:  flaggerv1beta1.ProviderKubernetes,
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   flaggerv1beta1.CanaryService{Port: 9898},
			Analysis: &flaggerv1beta1.CanaryAnalysis{
				Interval:   s.interval,
				Threshold:  s.threshold,
				Iterations: ptr.To(s.iterations),
				Metrics: []flaggerv1beta1.CanaryMetric{{
					Name:           "success-rate",
					TemplateRef:    &flaggerv1beta1.CrossNamespaceObjectReference{Name: metricTemplateName},
					ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)},
					Interval:       "1m",
				}},
			},
		},
	}
	if s.slowHook != "" {
		cd.Spec.Analysis.Webhooks = []flaggerv1beta1.CanaryWebhook{{
			Name: "slow", Type: flaggerv1beta1.RolloutHook, URL: s.slowHook, Timeout: "60s",
		}}
	}
	return cd
}

// unrelatedName is the name of the i-th set of unrelated objects.
func unrelatedName(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }

// unrelated returns objects no Canary refers to: a Deployment without
// replicas (so that it needs no Pod), a ConfigMap and a Secret.
func unrelated(ns, name string) []client.Object {
	payload := map[string]string{"config.yaml": fmt.Sprintf("name: %s\nreplicas: 3\nfeature: enabled\n", name)}
	return []client.Object{
		deployment(ns, name, 0, imageV1),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: payload},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: payload},
	}
}

// createAll creates what make returns for 0..n-1 with workers in
// parallel, and returns the first error.
func createAll(ctx context.Context, c client.Client, n int, make func(i int) []client.Object) error {
	return parallel(ctx, n, func(ctx context.Context, i int) error {
		for _, o := range make(i) {
			if err := c.Create(ctx, o); err != nil {
				return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
			}
		}
		return nil
	})
}

// parallel calls do for 0..n-1 with workers goroutines, stopping at the
// first error, which it returns.
func parallel(ctx context.Context, n int, do func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
