package cachescope

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func deployment(name string, owners ...metav1.OwnerReference) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: name, ResourceVersion: "7", Generation: 3, OwnerReferences: owners,
			Labels:        map[string]string{"app": name},
			Annotations:   map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "app:1"}},
		}}},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 1},
	}
}

func canaryFor(kind, name string) *flaggerv1beta1.Canary {
	return &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec:       flaggerv1beta1.CanarySpec{TargetRef: flaggerv1beta1.LocalObjectReference{Kind: kind, Name: name}},
	}
}

func TestTransformWorkload_KeepsInFullOnlyWhatCanariesUse(t *testing.T) {
	owned := metav1.OwnerReference{APIVersion: "flagger.app/v1beta1", Kind: "Canary", Name: "x"}
	foreign := metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Canary", Name: "x"}
	tests := []struct {
		name     string
		canaries []*flaggerv1beta1.Canary
		obj      *appsv1.Deployment
		full     bool
	}{
		{"an unrelated Deployment is a skeleton", nil, deployment("other"), false},
		{"a Canary's target is kept", []*flaggerv1beta1.Canary{canaryFor("Deployment", "web")}, deployment("web"), true},
		{"a DaemonSet target does not keep a Deployment of that name", []*flaggerv1beta1.Canary{canaryFor("DaemonSet", "web")}, deployment("web"), false},
		{"an object a Canary owns is kept", nil, deployment("web-primary", owned), true},
		{"a primary's name is kept for takeover", nil, deployment("legacy-primary"), true},
		{"an owner of another group named Canary does not count", nil, deployment("other", foreign), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			for _, cd := range tt.canaries {
				out, err := s.transformCanary(cd)
				if err != nil || out.(*flaggerv1beta1.Canary).ManagedFields != nil {
					t.Fatalf("transformCanary: %v, managed fields kept", err)
				}
			}
			out, err := s.transformWorkload(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			if tt.full {
				d, ok := out.(*appsv1.Deployment)
				if !ok || d.ManagedFields != nil || len(d.Spec.Template.Spec.Containers) != 1 {
					t.Fatalf("got %T %+v, want the Deployment without managed fields", out, out)
				}
				return
			}
			pm, ok := out.(*metav1.PartialObjectMetadata)
			if !ok {
				t.Fatalf("got %T, want a PartialObjectMetadata skeleton", out)
			}
			if pm.Kind != "Deployment" || pm.APIVersion != "apps/v1" || pm.Name != tt.obj.Name || pm.ResourceVersion != "7" ||
				pm.Generation != 3 || pm.Labels["app"] != tt.obj.Name || len(pm.OwnerReferences) != len(tt.obj.OwnerReferences) {
				t.Errorf("skeleton lost its kind, identity, labels or owners: %+v", pm)
			}
			if pm.Annotations != nil || pm.ManagedFields != nil {
				t.Errorf("skeleton kept annotations or managed fields: %+v", pm.ObjectMeta)
			}
		})
	}
}

func TestTransformConfigMetadata_KeepsIdentityAndVersionOnly(t *testing.T) {
	in := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: "cfg", UID: "u", ResourceVersion: "9",
		Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"big": "..."},
	}}
	out, err := transformConfigMetadata(in)
	if err != nil {
		t.Fatal(err)
	}
	pm := out.(*metav1.PartialObjectMetadata)
	if pm.Name != "cfg" || pm.Namespace != "ns" || pm.UID != "u" || pm.ResourceVersion != "9" {
		t.Errorf("identity lost: %+v", pm.ObjectMeta)
	}
	if pm.Labels != nil || pm.Annotations != nil {
		t.Errorf("labels or annotations kept: %+v", pm.ObjectMeta)
	}
	cm := &corev1.ConfigMap{Data: map[string]string{"k": "v"}}
	if out, _ := transformConfigMetadata(cm); out != cm {
		t.Error("a typed ConfigMap was changed")
	}
}
