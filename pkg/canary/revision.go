package canary

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// revisionLength is the number of hex digits of a revision.
const revisionLength = 16

// Revision returns the revision of a target: the first 16 hex digits of a
// SHA-256 over the JSON encoding of its pod template, without the parking
// node selector, followed by the tracked config checksums in key order.
//
// The JSON encoding of a pod template is canonical: struct fields come in
// declaration order and map keys sorted, so the result does not depend on
// map iteration order, process or call. Replica counts are not part of the
// template, so scaling does not change the revision.
func Revision(template *corev1.PodTemplateSpec, trackedConfigs map[string]string) (string, error) {
	t := template.DeepCopy()
	unpark(&t.Spec)
	data, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("encoding the pod template: %w", err)
	}
	h := sha256.New()
	_, _ = h.Write(data)
	for _, k := range slices.Sorted(maps.Keys(trackedConfigs)) {
		_, _ = fmt.Fprintf(h, "\n%s=%s", k, trackedConfigs[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:revisionLength], nil
}
