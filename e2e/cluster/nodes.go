package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// KWOKVersion is the version of sigs.k8s.io/kwok whose Stage files
	// configure KWOK. Keep it equal to KWOK_VERSION in hack/tool.sh.
	KWOKVersion = "v0.8.0"

	// fakeNodeAnnotation marks the Nodes KWOK manages (value "fake").
	fakeNodeAnnotation = "kwok.x-k8s.io/node"
	// NodeLabel is a label every fake Node carries, with value "kwok".
	NodeLabel = "type"
	// podCIDR is where KWOK takes Pod IPs from; it does not overlap the
	// API server's service range (10.0.0.0/24).
	podCIDR = "10.244.0.0/16"
)

// kwokStageFiles are the Stage files of the KWOK module that make Nodes
// Ready and keep their leases fresh, and make Pods Ready, complete and go
// away when deleted.
var kwokStageFiles = []string{
	"kustomize/stage/node/fast/node-initialize.yaml",
	"kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"kustomize/stage/pod/fast/pod-ready.yaml",
	"kustomize/stage/pod/fast/pod-complete.yaml",
	"kustomize/stage/pod/fast/pod-delete.yaml",
}

// kwokStages returns the paths of kwokStageFiles in the Go module cache,
// downloading the module if the cache lacks it.
func kwokStages(ctx context.Context) ([]string, error) {
	module := "sigs.k8s.io/kwok@" + KWOKVersion
	// Outside any module, so that Sluice's go.mod and go.sum stay as they are.
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil || info.Error != "" || info.Dir == "" {
		return nil, fmt.Errorf("locating the KWOK Stage files (go mod download %s): %w: %s %s",
			module, errors.Join(err, errors.New("no module directory")), info.Error, strings.TrimSpace(stderr.String()))
	}
	paths := make([]string, 0, len(kwokStageFiles))
	for _, f := range kwokStageFiles {
		p := filepath.Join(info.Dir, filepath.FromSlash(f))
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("KWOK Stage file: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// createNodes creates n fake Nodes for KWOK and waits until all are Ready
// and carry no NoSchedule or NoExecute taint.
func (c *Cluster) createNodes(ctx context.Context, n int) error {
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		if err := c.Client.Create(ctx, fakeNode(name)); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating Node %s: %w", name, err)
		}
		c.Nodes = append(c.Nodes, name)
	}
	var pending []string
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var nodes corev1.NodeList
		if err := c.Client.List(ctx, &nodes, client.MatchingLabels{NodeLabel: "kwok"}); err != nil {
			return false, nil //nolint:nilerr // the API server may be briefly busy: retry
		}
		pending = pending[:0]
		ready := 0
		for i := range nodes.Items {
			if why := unschedulable(&nodes.Items[i]); why != "" {
				pending = append(pending, nodes.Items[i].Name+": "+why)
				continue
			}
			ready++
		}
		return ready >= n, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d Nodes to become Ready and untainted (still: %s): %w; see kwok.log and kube-controller-manager.log",
			n, strings.Join(pending, "; "), err)
	}
	return nil
}

// fakeNode is a Node that KWOK plays the kubelet of, with room for many
// Pods.
func fakeNode(name string) *corev1.Node {
	room := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("1Ti"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{fakeNodeAnnotation: "fake"},
			Labels: map[string]string{
				NodeLabel:              "kwok",
				corev1.LabelHostname:   name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: "amd64",
			},
		},
		Status: corev1.NodeStatus{Capacity: room, Allocatable: room},
	}
}

// unschedulable says why the scheduler would not place Pods on node, or
// returns "" if it would.
func unschedulable(node *corev1.Node) string {
	ready := false
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		return "not Ready"
	}
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return "tainted " + t.Key
		}
	}
	if node.Spec.Unschedulable {
		return "cordoned"
	}
	return ""
}
