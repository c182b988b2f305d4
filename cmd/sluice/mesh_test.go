package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicedev/sluice/internal/testenv"
)

func TestNewMeshCluster_ReadsTheMeshClusterThroughItsOwnCache(t *testing.T) {
	mesh, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatalf("starting the mesh API server: %v", err)
	}
	t.Cleanup(func() {
		if err := mesh.Stop(); err != nil {
			t.Errorf("stopping the mesh API server: %v", err)
		}
	})
	kubeconfig := filepath.Join(t.TempDir(), "mesh.kubeconfig")
	if err := mesh.Kubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	workloads := &rest.Config{Host: "https://workloads.example:6443", QPS: 7, Burst: 9, UserAgent: "sluice/test"}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}

	// Unset, or naming the workloads' own cluster: no second cluster.
	if c, err := newMeshCluster(workloads, &Options{}, scheme, cache.Options{}); c != nil || err != nil {
		t.Errorf("without the flag: %v, %v; want no cluster", c, err)
	}
	if c, err := newMeshCluster(&rest.Config{Host: mesh.Config.Host}, &Options{KubeconfigServiceMesh: kubeconfig}, scheme, cache.Options{}); c != nil || err != nil {
		t.Errorf("with the workloads' own cluster: %v, %v; want no cluster", c, err)
	}
	if _, err := newMeshCluster(workloads, &Options{KubeconfigServiceMesh: filepath.Join(t.TempDir(), "missing")}, scheme, cache.Options{}); err == nil ||
		!strings.Contains(err.Error(), "-kubeconfig-service-mesh") {
		t.Errorf("with a missing kubeconfig: error = %v, want one naming the flag", err)
	}

	c, err := newMeshCluster(workloads, &Options{KubeconfigServiceMesh: kubeconfig}, scheme, cache.Options{})
	if err != nil || c == nil {
		t.Fatalf("newMeshCluster = %v, %v; want the mesh cluster", c, err)
	}
	if cfg := c.GetConfig(); !sameHost(cfg.Host, mesh.Config.Host) || cfg.QPS != 7 || cfg.Burst != 9 || cfg.UserAgent != "sluice/test" {
		t.Errorf("mesh config host %s qps %v burst %d agent %q; want the mesh server with the workloads' client limits", cfg.Host, cfg.QPS, cfg.Burst, cfg.UserAgent)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { _ = c.Start(ctx) }()
	if err := mesh.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-in-the-mesh"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.GetAPIReader().Get(ctx, client.ObjectKey{Name: "only-in-the-mesh"}, &corev1.Namespace{}); err != nil {
		t.Errorf("the mesh cluster's reader does not see its namespace: %v", err)
	}
	for ctx.Err() == nil {
		if err := c.GetClient().Get(ctx, client.ObjectKey{Name: "only-in-the-mesh"}, &corev1.Namespace{}); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Error("the mesh cluster's cached client never saw its namespace")
}
