package canary_test

import (
	"maps"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/problem"
)

// configTarget is a Deployment that uses configs in every supported way:
//
//	cm-vol        volume (and env key ref, so referenced twice)
//	cm-envfrom    envFrom of an init container
//	cm-projected  projected volume source
//	cm-disabled   volume, opted out by annotation
//	cm-optional   optional env key ref, missing
//	s-vol         Opaque secret volume
//	s-env         basic-auth secret env key ref
//	s-tls         tls secret projected
//	s-docker      dockerconfigjson secret envFrom, not a tracked type
func configTarget() *appsv1.Deployment {
	return deployment(func(d *appsv1.Deployment) {
		spec := &d.Spec.Template.Spec
		spec.Volumes = []corev1.Volume{
			{Name: "a", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-vol"}}}},
			{Name: "b", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-disabled"}}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s-vol"}}},
			{Name: "d", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-projected"}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s-tls"}}},
			}}}},
		}
		c := &spec.Containers[0]
		c.Env = []corev1.EnvVar{
			{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-vol"}, Key: "k"}}},
			{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-optional"}, Key: "k", Optional: ptr.To(true)}}},
			{Name: "C", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s-env"}, Key: "username"}}},
		}
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s-docker"}}}}
		spec.InitContainers = []corev1.Container{{
			Name: "init", Image: "busybox",
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-envfrom"}}}},
		}}
	})
}

func configMap(name string, data map[string]string, annotations map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations, Labels: map[string]string{"team.io/owner": "x", "other": "y"}}, Data: data}
}

func secret(name string, typ corev1.SecretType, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Type: typ, StringData: data}
	return s
}

func createConfigs(f *fixture) {
	f.create(
		configMap("cm-vol", map[string]string{"k": "v1"}, nil),
		configMap("cm-envfrom", map[string]string{"X": "1"}, nil),
		configMap("cm-projected", map[string]string{"p": "1"}, nil),
		configMap("cm-disabled", map[string]string{"d": "1"}, map[string]string{canary.ConfigTrackingAnnotation: canary.ConfigTrackingDisabled}),
		secret("s-vol", corev1.SecretTypeOpaque, map[string]string{"token": "t"}),
		secret("s-env", corev1.SecretTypeBasicAuth, map[string]string{"username": "u", "password": "p"}),
		secret("s-tls", corev1.SecretTypeTLS, map[string]string{"tls.crt": "c", "tls.key": "k"}),
		secret("s-docker", corev1.SecretTypeDockerConfigJson, map[string]string{".dockerconfigjson": "{}"}),
	)
}

func TestObserve_TracksConfigsReferencedByTemplate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	createConfigs(f)
	f.create(configTarget())
	cd := f.canary("Deployment")

	st := f.observe(f.workload(cd), cd)

	want := []string{"configmap/cm-envfrom", "configmap/cm-projected", "configmap/cm-vol", "secret/s-env", "secret/s-tls", "secret/s-vol"}
	if got := slices.Sorted(maps.Keys(st.TrackedConfigs)); !slices.Equal(got, want) {
		t.Errorf("tracked configs = %v, want %v", got, want)
	}
	for k, sum := range st.TrackedConfigs {
		if len(sum) != 16 {
			t.Errorf("checksum of %s = %q, want 16 hex digits", k, sum)
		}
	}
	if n := f.readsOf(&corev1.ConfigMap{}, "cm-vol"); n != 1 {
		t.Errorf("cm-vol read %d times, want once although referenced twice", n)
	}
	if n := f.readsOf(&corev1.ConfigMap{}, "cm-optional"); n != 1 {
		t.Errorf("cm-optional read %d times, want once", n)
	}
}

func TestEnsurePrimary_CopiesTrackedConfigsAndRenamesReferences(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.IncludeLabelPrefix = []string{"team.io"}
	f := newFixture(t, cfg)
	createConfigs(f)
	f.create(configTarget())
	cd := f.canary("Deployment")

	f.must(f.workload(cd).EnsurePrimary(f.ctx(), cd))

	cm := f.get("cm-vol-primary", &corev1.ConfigMap{}).(*corev1.ConfigMap)
	if cm.Data["k"] != "v1" || !maps.Equal(cm.Labels, map[string]string{"team.io/owner": "x"}) {
		t.Errorf("cm-vol-primary = data %v labels %v, want data copied and labels filtered", cm.Data, cm.Labels)
	}
	assertControlledBy(t, cm, cd)
	s := f.get("s-env-primary", &corev1.Secret{}).(*corev1.Secret)
	if s.Type != corev1.SecretTypeBasicAuth || string(s.Data["password"]) != "p" {
		t.Errorf("s-env-primary = type %s data %v, want the basic-auth secret copied", s.Type, s.Data)
	}
	assertControlledBy(t, s, cd)
	for _, name := range []string{"cm-envfrom-primary", "cm-projected-primary"} {
		f.get(name, &corev1.ConfigMap{})
	}
	for _, name := range []string{"s-vol-primary", "s-tls-primary"} {
		f.get(name, &corev1.Secret{})
	}
	for _, obj := range []client.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-disabled-primary"}}, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s-docker-primary"}}} {
		err := k8s.Get(f.ctx(), client.ObjectKey{Namespace: f.ns, Name: obj.GetName()}, obj)
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s: err = %v, want NotFound (not tracked)", obj.GetName(), err)
		}
	}

	spec := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment).Spec.Template.Spec
	got := map[string]string{
		"volume configMap":   spec.Volumes[0].ConfigMap.Name,
		"volume disabled":    spec.Volumes[1].ConfigMap.Name,
		"volume secret":      spec.Volumes[2].Secret.SecretName,
		"projected cm":       spec.Volumes[3].Projected.Sources[0].ConfigMap.Name,
		"projected secret":   spec.Volumes[3].Projected.Sources[1].Secret.Name,
		"env cm":             spec.Containers[0].Env[0].ValueFrom.ConfigMapKeyRef.Name,
		"env optional":       spec.Containers[0].Env[1].ValueFrom.ConfigMapKeyRef.Name,
		"env secret":         spec.Containers[0].Env[2].ValueFrom.SecretKeyRef.Name,
		"envFrom docker":     spec.Containers[0].EnvFrom[0].SecretRef.Name,
		"init envFrom cm":    spec.InitContainers[0].EnvFrom[0].ConfigMapRef.Name,
		"target env cm kept": f.get("podinfo", &appsv1.Deployment{}).(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Env[0].ValueFrom.ConfigMapKeyRef.Name,
	}
	want := map[string]string{
		"volume configMap":   "cm-vol-primary",
		"volume disabled":    "cm-disabled",
		"volume secret":      "s-vol-primary",
		"projected cm":       "cm-projected-primary",
		"projected secret":   "s-tls-primary",
		"env cm":             "cm-vol-primary",
		"env optional":       "cm-optional",
		"env secret":         "s-env-primary",
		"envFrom docker":     "s-docker",
		"init envFrom cm":    "cm-envfrom-primary",
		"target env cm kept": "cm-vol",
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("%s references %q, want %q", k, got[k], want[k])
		}
	}
}

func TestObserve_MissingRequiredConfigIsInvalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	createConfigs(f)
	f.create(configTarget())
	f.must(k8s.Delete(f.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "s-env"}}))
	cd := f.canary("Deployment")

	_, err := f.workload(cd).Observe(f.ctx(), cd)

	ie, ok := problem.As(err)
	if !ok || ie.Reason != "ConfigNotFound" {
		t.Fatalf("err = %v, want Invalid ConfigNotFound", err)
	}
	want := "Secret s-env referenced by Deployment podinfo not found in namespace " + f.ns + ": create it or mark the reference optional"
	if ie.Message != want {
		t.Errorf("message = %q, want %q", ie.Message, want)
	}
}

func TestPromote_UpdatesConfigCopiesAndRollsPrimary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	createConfigs(f)
	f.create(configTarget())
	cd := f.canary("Deployment")
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	before := f.observe(w, cd)
	id := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment).Spec.Template.Annotations[canary.FlaggerIDAnnotation]

	update(f, "cm-vol", &corev1.ConfigMap{}, func(cm *corev1.ConfigMap) { cm.Data = map[string]string{"k": "v2"} })
	after := f.observe(w, cd)
	if after.Revision == before.Revision || after.TrackedConfigs["configmap/cm-vol"] == before.TrackedConfigs["configmap/cm-vol"] {
		t.Fatalf("revision %s → %s, checksum %s → %s: want both changed by the config data",
			before.Revision, after.Revision, before.TrackedConfigs["configmap/cm-vol"], after.TrackedConfigs["configmap/cm-vol"])
	}
	if after.TrackedConfigs["secret/s-vol"] != before.TrackedConfigs["secret/s-vol"] {
		t.Errorf("checksum of an unchanged secret changed")
	}

	f.must(f.promote(w, cd))

	if got := f.get("cm-vol-primary", &corev1.ConfigMap{}).(*corev1.ConfigMap).Data; !maps.Equal(got, map[string]string{"k": "v2"}) {
		t.Errorf("cm-vol-primary data = %v, want the new data", got)
	}
	p := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment)
	if p.Spec.Template.Annotations[canary.FlaggerIDAnnotation] == id {
		t.Errorf("flagger-id unchanged: a config-only change must roll the primary's pods")
	}
	if p.Annotations[canary.RevisionAnnotation] != after.Revision {
		t.Errorf("revision annotation = %s, want %s", p.Annotations[canary.RevisionAnnotation], after.Revision)
	}
}

func TestObserve_ConfigTrackingDisabledTracksNothing(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.ConfigTracking = false
	f := newFixture(t, cfg)
	f.create(configTarget()) // the configs need not even exist
	cd := f.canary("Deployment")
	w := f.workload(cd)

	st := f.observe(w, cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))

	if st.TrackedConfigs != nil {
		t.Errorf("tracked configs = %v, want none", st.TrackedConfigs)
	}
	spec := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment).Spec.Template.Spec
	if got := spec.Volumes[0].ConfigMap.Name; got != "cm-vol" {
		t.Errorf("volume references %q, want the original cm-vol", got)
	}
}

func TestObserve_ReadsAConfigMapAgainOnlyWhenItChanged(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	createConfigs(f)
	f.create(configTarget())
	cd := f.canary("Deployment")
	f.deps.Configs = &canary.ConfigCache{}
	w := f.workload(cd)
	first := f.observe(w, cd)
	f.observe(w, cd)
	if n := f.readsOf(&corev1.ConfigMap{}, "cm-vol"); n != 1 {
		t.Errorf("cm-vol read %d times from the API server for two reconciles, want once", n)
	}
	update(f, "cm-vol", &corev1.ConfigMap{}, func(cm *corev1.ConfigMap) { cm.Data = map[string]string{"k": "changed"} })
	after := f.observe(w, cd)
	if n := f.readsOf(&corev1.ConfigMap{}, "cm-vol"); n != 2 {
		t.Errorf("cm-vol read %d times after it changed, want twice", n)
	}
	if after.Revision == first.Revision {
		t.Error("a changed ConfigMap served from the cache did not change the revision")
	}
}
