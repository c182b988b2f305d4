//go:build e2e

package cluster_test

import (
	"context"
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicedev/sluice/e2e/cluster"
)

// TestCluster_RollsOutAndRollsOverADeployment checks that the local control
// plane runs Deployments to completion: Pods are scheduled on the fake
// Nodes, become Ready, and an image change replaces them through a new
// ReplicaSet.
func TestCluster_RollsOutAndRollsOverADeployment(t *testing.T) {
	begin := time.Now()
	c, err := cluster.Start(t.Context(), cluster.Options{Nodes: 2, Dir: t.TempDir(), Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("cluster started in %s", time.Since(begin))
	if _, err := os.Stat(c.KubeconfigPath); err != nil {
		t.Fatalf("admin kubeconfig: %v", err)
	}

	// Three minutes: after two API server restarts, kube-controller-manager's
	// informers relist with backoff, which on a loaded machine took more
	// than the half minute a one-minute budget left them.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	d := podinfo("default", "podinfo", "ghcr.io/stefanprodan/podinfo:6.0.0")
	step := time.Now()
	if err := c.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitForRollout(ctx, d.Namespace, d.Name); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
		t.Fatal(err)
	}
	if d.Status.AvailableReplicas != 3 {
		t.Fatalf("available replicas = %d, want 3", d.Status.AvailableReplicas)
	}
	t.Logf("rolled out 3 replicas in %s", time.Since(step))
	assertPodsOnFakeNodes(ctx, t, c, d, 3)

	step = time.Now()
	d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.0.1"
	if err := c.Client.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitForRollout(ctx, d.Namespace, d.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("rolled over to the new image in %s", time.Since(step))

	var sets appsv1.ReplicaSetList
	if err := c.Client.List(ctx, &sets, client.InNamespace(d.Namespace), client.MatchingLabels{"app": d.Name}); err != nil {
		t.Fatal(err)
	}
	if len(sets.Items) != 2 {
		t.Fatalf("ReplicaSets = %d, want the first and a new one", len(sets.Items))
	}
	for _, rs := range sets.Items {
		image := rs.Spec.Template.Spec.Containers[0].Image
		switch image {
		case "ghcr.io/stefanprodan/podinfo:6.0.1":
			if rs.Status.AvailableReplicas != 3 {
				t.Errorf("new ReplicaSet %s has %d available replicas, want 3", rs.Name, rs.Status.AvailableReplicas)
			}
		default:
			if ptr.Deref(rs.Spec.Replicas, -1) != 0 || rs.Status.Replicas != 0 {
				t.Errorf("old ReplicaSet %s (%s) still has replicas: spec %d, status %d",
					rs.Name, image, ptr.Deref(rs.Spec.Replicas, -1), rs.Status.Replicas)
			}
		}
	}
	assertPodsOnFakeNodes(ctx, t, c, d, 3)

	// A restarted API server keeps etcd's data, its address and its
	// certificates: the same client reads the same Deployment, and the
	// controllers go on working (a scale-up rolls out).
	for _, kill := range []bool{true, false} {
		step = time.Now()
		if err := c.RestartAPIServer(ctx, time.Second, kill); err != nil {
			t.Fatal(err)
		}
		t.Logf("restarted kube-apiserver (SIGKILL %v) in %s", kill, time.Since(step))
		got := &appsv1.Deployment{}
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
			t.Fatalf("reading the Deployment after the restart: %v", err)
		}
		if got.Generation != d.Generation || got.Spec.Template.Spec.Containers[0].Image != "ghcr.io/stefanprodan/podinfo:6.0.1" {
			t.Fatalf("after the restart the Deployment has generation %d and image %s; want %d and 6.0.1",
				got.Generation, got.Spec.Template.Spec.Containers[0].Image, d.Generation)
		}
	}
	scaled := d.DeepCopy()
	scaled.Spec.Replicas = ptr.To[int32](4)
	if err := c.Client.Patch(ctx, scaled, client.MergeFrom(d)); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitForRollout(ctx, d.Namespace, d.Name); err != nil {
		t.Fatalf("after API server restarts: %v", err)
	}
}

// assertPodsOnFakeNodes checks that the Deployment's live Pods are exactly
// want, each Running and Ready on one of the cluster's fake Nodes.
func assertPodsOnFakeNodes(ctx context.Context, t *testing.T, c *cluster.Cluster, d *appsv1.Deployment, want int) {
	t.Helper()
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace(d.Namespace), client.MatchingLabels{"app": d.Name}); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]bool{}
	for _, n := range c.Nodes {
		nodes[n] = true
	}
	live := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		live++
		if !nodes[p.Spec.NodeName] || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			t.Errorf("Pod %s: node %q, phase %s, IP %q; want Running with an IP on one of %v",
				p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, c.Nodes)
		}
	}
	if live != want {
		t.Errorf("live Pods = %d, want %d", live, want)
	}
}

// podinfo is a Deployment of 3 replicas that mounts no service-account
// token.
func podinfo(namespace, name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers:                   []corev1.Container{{Name: name, Image: image}},
				},
			},
		},
	}
}

// testWriter sends the cluster's progress lines to the test log.
type testWriter struct{ t *testing.T }

// Write logs p as one test log line.
func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-min(len(p), 1)]))
	return len(p), nil
}
