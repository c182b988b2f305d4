//go:build e2e

package takeover

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/davecgh/go-spew/spew"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// flaggerSpecHash is the value Flagger v1.44.0 writes to
// status.lastAppliedSpec and lastPromotedSpec for a pod template: FNV-32a
// over a spew dump ("%#v", sorted keys, no Stringer methods) of the
// corev1.PodTemplateSpec as Flagger's k8s.io/api v0.36.2 decodes it,
// printed in decimal and passed through rand.SafeEncodeString.
//
// The dump prints every struct field, set or not, so the hash depends on
// the struct layout of the k8s.io/api version the hashing binary was built
// with. Sluice's v0.37.2 has one field more in PodSpec,
// EvictionResponders; Flagger 1.44 never sees it (it drops unknown
// fields when it decodes), so it is removed here. Step
// FlaggerInitializesAndPromotes checks this function against the values
// the real Flagger wrote.
func flaggerSpecHash(template corev1.PodTemplateSpec) string {
	t := template.DeepCopy()
	t.Spec.EvictionResponders = nil
	printer := spew.ConfigState{Indent: " ", SortKeys: true, DisableMethods: true, SpewKeys: true}
	dump := printer.Sprintf("%#v", *t)
	dump = strings.Replace(dump, " EvictionResponders:([]v1.EvictionResponder)<nil>", "", 1)
	h := fnv.New32a()
	_, _ = h.Write([]byte(dump))
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// flaggerConfigChecksum is Flagger v1.44.0's checksum of a tracked
// ConfigMap in status.trackedConfigs: the first 8 bytes of SHA-256 over
// the JSON of its data (binaryData is not part of it), in hex.
func flaggerConfigChecksum(data map[string]string) string {
	b, _ := json.Marshal(data) // a map of strings always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// flaggerView is what Flagger v1.44.0 would compute for a Canary's target
// now: its spec hash and its trackedConfigs. The blue/green target tracks
// its ConfigMap.
func flaggerView(ctx context.Context, c client.Client, app string) (hash string, tracked map[string]string, err error) {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: app}, d); err != nil {
		return "", nil, fmt.Errorf("reading Deployment %s: %w", app, err)
	}
	if app != blueGreenApp {
		return flaggerSpecHash(d.Spec.Template), nil, nil
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: blueGreenApp + "-config"}, cm); err != nil {
		return "", nil, fmt.Errorf("reading ConfigMap %s-config: %w", blueGreenApp, err)
	}
	return flaggerSpecHash(d.Spec.Template), map[string]string{"configmap/" + cm.Name: flaggerConfigChecksum(cm.Data)}, nil
}
