package router

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// fluxAnnotation marks annotation keys of Flux's controllers; they are
// never copied onto generated objects, so that Flux does not take the
// generated objects for its own.
const fluxAnnotation = "toolkit.fluxcd.io"

// SetMetadata sets the labels and annotations Sluice manages onto obj,
// for use in a MutateFunc:
//
//   - every key of labels and annotations is set to its value;
//   - a key that Sluice set earlier (it is Sluice's in the object's
//     managedFields, see FieldOwner) and is no longer wanted is removed;
//   - keys set by others are kept;
//   - keys listed in unmanaged are neither set nor removed;
//   - annotation keys containing toolkit.fluxcd.io are never set.
//
// When the client's cache strips managedFields, nothing is removed.
func SetMetadata(obj client.Object, labels, annotations map[string]string, unmanaged *flaggerv1beta1.UnmanagedMetadata) {
	var skipLabels, skipAnnotations []string
	if unmanaged != nil {
		skipLabels, skipAnnotations = unmanaged.Labels, unmanaged.Annotations
	}
	ownedLabels, ownedAnnotations := sluiceMetadataKeys(obj.GetManagedFields())
	obj.SetLabels(mergeKeys(obj.GetLabels(), labels, ownedLabels, func(k string) bool {
		return slices.Contains(skipLabels, k)
	}))
	obj.SetAnnotations(mergeKeys(obj.GetAnnotations(), annotations, ownedAnnotations, func(k string) bool {
		return slices.Contains(skipAnnotations, k) || strings.Contains(k, fluxAnnotation)
	}))
}

// mergeKeys returns live with the wanted keys set and the owned keys that
// are no longer wanted removed, leaving the keys for which skip is true as
// they are.
func mergeKeys(live, wanted map[string]string, owned []string, skip func(string) bool) map[string]string {
	out := maps.Clone(live)
	for _, k := range owned {
		if _, ok := wanted[k]; !ok && !skip(k) {
			delete(out, k)
		}
	}
	for k, v := range wanted {
		if skip(k) {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(wanted))
		}
		out[k] = v
	}
	return out
}

// sluiceMetadataKeys returns the label and annotation keys that the
// managedFields attribute to Sluice's own writes.
func sluiceMetadataKeys(entries []metav1.ManagedFieldsEntry) (labels, annotations []string) {
	for _, e := range entries {
		if e.Manager != FieldOwner || e.Operation != metav1.ManagedFieldsOperationUpdate || e.Subresource != "" || e.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Metadata struct {
				Labels      map[string]json.RawMessage `json:"f:labels"`
				Annotations map[string]json.RawMessage `json:"f:annotations"`
			} `json:"f:metadata"`
		}
		if err := json.Unmarshal(e.FieldsV1.GetRawBytes(), &fields); err != nil {
			// Unreadable ownership means nothing is known to be Sluice's.
			continue
		}
		labels = append(labels, fieldKeys(fields.Metadata.Labels)...)
		annotations = append(annotations, fieldKeys(fields.Metadata.Annotations)...)
	}
	return labels, annotations
}

// fieldKeys returns the map keys of a managedFields map node ("f:<key>").
func fieldKeys(node map[string]json.RawMessage) []string {
	var keys []string
	for k := range node {
		if key, ok := strings.CutPrefix(k, "f:"); ok {
			keys = append(keys, key)
		}
	}
	return keys
}
