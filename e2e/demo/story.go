package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/e2e/cluster"
)

// Annotations the traffic simulator reads from the pod template.
const (
	errorRateAnnotation = "sim.sluice.dev/error-rate"
	latencyAnnotation   = "sim.sluice.dev/latency-ms"
)

func createNamespace(ctx context.Context, c *cluster.Cluster) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := c.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	return nil
}

// story deploys the sample app and plays its releases.
type story struct {
	c        *cluster.Cluster
	start    time.Time
	outcomes []string
}

func (s *story) deploy(ctx context.Context, proxyURL, loadTesterURL string) error {
	say("Deploying podinfo (3 replicas) and its Canary: istio, 20%% steps to 60%%, success rate >= 99%%, P99 <= 500ms")
	labels := map[string]string{"app": "podinfo"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{errorRateAnnotation: "0", latencyAnnotation: "20"}},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers: []corev1.Container{{
						Name: "podinfo", Image: "ghcr.io/stefanprodan/podinfo:6.0.0",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
					}},
				},
			},
		},
	}
	cd := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: namespace},
		Spec: flaggerv1beta1.CanarySpec{
			Provider:  flaggerv1beta1.ProviderIstio,
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   flaggerv1beta1.CanaryService{Port: 9898},
			Analysis: &flaggerv1beta1.CanaryAnalysis{
				Interval: "10s", Threshold: 2, StepWeight: ptr.To[int32](20), MaxWeight: ptr.To[int32](60),
				Metrics: []flaggerv1beta1.CanaryMetric{
					{Name: "request-success-rate", Interval: "20s", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}},
					{Name: "request-duration", Interval: "20s", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}},
				},
				// The load test starts before the first weight step and runs in
				// the background, so every step has traffic to measure.
				Webhooks: []flaggerv1beta1.CanaryWebhook{{
					Name: "load-test", Type: flaggerv1beta1.PreRolloutHook, URL: loadTesterURL + "/",
					Metadata: map[string]string{"cmd": "hey -z 30m -q 25 -c 2 " + proxyURL + "/"},
				}},
			},
		},
	}
	for _, o := range []client.Object{d, cd} {
		if err := s.c.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s: %w", o.GetName(), err)
		}
	}
	return s.watch(ctx, "", flaggerv1beta1.CanaryPhaseInitialized)
}

// release rolls out a new image whose pods answer errorRate of requests
// with errors, and watches the Canary until it reaches want.
func (s *story) release(ctx context.Context, tag string, errorRate float64, want flaggerv1beta1.CanaryPhase) error {
	kind := "a healthy release"
	if errorRate > 0 {
		kind = fmt.Sprintf("a faulty release (%.0f%% errors)", errorRate*100)
	}
	say("Releasing podinfo:%s, %s", tag, kind)
	var d appsv1.Deployment
	if err := s.c.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "podinfo"}, &d); err != nil {
		return fmt.Errorf("reading podinfo: %w", err)
	}
	before := d.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:" + tag
	d.Spec.Template.Annotations[errorRateAnnotation] = strconv.FormatFloat(errorRate, 'f', -1, 64)
	if err := s.c.Client.Patch(ctx, &d, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("updating podinfo: %w", err)
	}
	start := time.Now()
	if err := s.watch(ctx, "Progressing", want); err != nil {
		return err
	}
	s.outcomes = append(s.outcomes, fmt.Sprintf("podinfo:%s (%s): %s after %s", tag, kind, want, time.Since(start).Round(time.Second)))
	return nil
}

// watch prints every change of the Canary's phase, weight and checks until
// it reaches want, after first passing through via when via is set.
func (s *story) watch(ctx context.Context, via string, want flaggerv1beta1.CanaryPhase) error {
	fmt.Printf("    %-8s %-18s %-7s %-7s %-9s %s\n", "TIME", "PHASE", "WEIGHT", "FAILED", "SUCCESS", "P99")
	last, passed := "", via == ""
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var cd flaggerv1beta1.Canary
		if err := s.c.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "podinfo"}, &cd); err != nil {
			return fmt.Errorf("reading the Canary: %w", err)
		}
		st := cd.Status
		rate, p99 := lastValue(st.Analysis, "request-success-rate", "%.1f%%"), lastValue(st.Analysis, "request-duration", "%.0fms")
		line := fmt.Sprintf("%-18s %-7s %-7d %-9s %s", st.Phase, fmt.Sprintf("%d%%", st.CanaryWeight), st.FailedChecks, rate, p99)
		if line != last {
			fmt.Printf("    %-8s %s\n", time.Since(s.start).Round(time.Second), line)
			last = line
		}
		passed = passed || string(st.Phase) == via
		if passed && st.Phase == want {
			return nil
		}
		if passed && via != "" && st.Phase != want && (st.Phase == flaggerv1beta1.CanaryPhaseSucceeded || st.Phase == flaggerv1beta1.CanaryPhaseFailed) {
			return fmt.Errorf("the Canary ended %s, want %s: %s", st.Phase, want, promotedMessage(&cd))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("the Canary did not reach %s in 10 minutes", want)
}

func lastValue(results []flaggerv1beta1.CanaryCheckResult, name, format string) string {
	for i := len(results) - 1; i >= 0; i-- {
		if results[i].Name == name && results[i].Value != nil {
			return fmt.Sprintf(format, *results[i].Value)
		}
	}
	return "-"
}

func promotedMessage(cd *flaggerv1beta1.Canary) string {
	for _, c := range cd.Status.Conditions {
		if c.Type == flaggerv1beta1.PromotedType {
			return c.Message
		}
	}
	return ""
}

func (s *story) summary(kubeconfig, dir string, keep bool) {
	say("Summary")
	for _, o := range s.outcomes {
		fmt.Println("    " + o)
	}
	fmt.Println("    logs (sluice.log, control-plane components): " + dir)
	if keep {
		fmt.Println("    " + strings.Join([]string{"KUBECONFIG=" + kubeconfig, "kubectl", "-n", namespace, "describe", "canary", "podinfo"}, " "))
	} else {
		fmt.Println("    everything is stopped; run `make demo DEMO_FLAGS=--keep` to keep the cluster and poke at it with kubectl")
	}
}
