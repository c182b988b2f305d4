package canary_test

import (
	"maps"
	"regexp"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/sluicedev/sluice/pkg/canary"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestEnsurePrimary_CopiesTargetWithPrimaryLabels(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.IncludeLabelPrefix = []string{"team.io", "app.kubernetes.io"}
	f := newFixture(t, cfg)
	f.create(deployment(func(d *appsv1.Deployment) {
		d.Labels = map[string]string{
			"app":                              "podinfo",
			"team.io/owner":                    "payments",
			"app.kubernetes.io/part-of":        "shop",
			"other":                            "dropped",
			"kustomize.toolkit.fluxcd.io/name": "apps",
		}
		d.Annotations = map[string]string{"team.io/doc": "https://example.com", "unrelated": "x"}
		d.Spec.Selector.MatchLabels["tier"] = "web"
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](120)
		d.Spec.MinReadySeconds = 5
		d.Spec.RevisionHistoryLimit = ptr.To[int32](3)
		d.Spec.Strategy = appsv1.DeploymentStrategy{
			Type:          appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromInt32(2)), MaxUnavailable: ptr.To(intstr.FromInt32(0))},
		}
	}))
	cd := f.canary("Deployment")
	w := f.workload(cd)

	f.must(w.EnsurePrimary(f.ctx(), cd))

	p := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment)
	wantLabels := map[string]string{"app": "podinfo-primary", "team.io/owner": "payments", "app.kubernetes.io/part-of": "shop"}
	if !maps.Equal(p.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", p.Labels, wantLabels)
	}
	if p.Annotations["team.io/doc"] != "https://example.com" || p.Annotations["unrelated"] != "" {
		t.Errorf("annotations = %v, want team.io/doc only copied", p.Annotations)
	}
	st := f.observe(w, cd)
	if got := p.Annotations[canary.RevisionAnnotation]; got != st.Revision {
		t.Errorf("revision annotation = %q, want %q", got, st.Revision)
	}
	if want := map[string]string{"app": "podinfo-primary", "tier": "web"}; !maps.Equal(p.Spec.Selector.MatchLabels, want) {
		t.Errorf("selector = %v, want %v", p.Spec.Selector.MatchLabels, want)
	}
	if want := map[string]string{"app": "podinfo-primary", "tier": "web"}; !maps.Equal(p.Spec.Template.Labels, want) {
		t.Errorf("template labels = %v, want %v", p.Spec.Template.Labels, want)
	}
	if p.Spec.Template.Annotations["prometheus.io/scrape"] != "true" {
		t.Errorf("template annotations = %v, want the target's kept", p.Spec.Template.Annotations)
	}
	if id := p.Spec.Template.Annotations[canary.FlaggerIDAnnotation]; !uuidPattern.MatchString(id) {
		t.Errorf("flagger-id = %q, want a UUID", id)
	}
	if got := ptr.Deref(p.Spec.Replicas, 0); got != 3 {
		t.Errorf("replicas = %d, want 3", got)
	}
	if ptr.Deref(p.Spec.ProgressDeadlineSeconds, 0) != 120 || p.Spec.MinReadySeconds != 5 || ptr.Deref(p.Spec.RevisionHistoryLimit, 0) != 3 {
		t.Errorf("rollout settings not copied: %+v", p.Spec)
	}
	if p.Spec.Strategy.RollingUpdate == nil || p.Spec.Strategy.RollingUpdate.MaxSurge.IntValue() != 2 {
		t.Errorf("strategy = %+v, want maxSurge 2", p.Spec.Strategy)
	}
	if p.Spec.Template.Spec.Containers[0].Image != "ghcr.io/stefanprodan/podinfo:6.0.0" {
		t.Errorf("image = %s", p.Spec.Template.Spec.Containers[0].Image)
	}
	assertControlledBy(t, p, cd)
}

func TestEnsurePrimary_FiltersLabelsAndAnnotationsByPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		prefixes    []string
		labels      map[string]string
		annotations map[string]string
	}{
		{
			name:        "no prefix copies only the selector label",
			labels:      map[string]string{"app": "podinfo-primary"},
			annotations: map[string]string{},
		},
		{
			name:        "an empty prefix matches nothing",
			prefixes:    []string{""},
			labels:      map[string]string{"app": "podinfo-primary"},
			annotations: map[string]string{},
		},
		{
			name:        "prefixes",
			prefixes:    []string{"team.io", "b"},
			labels:      map[string]string{"app": "podinfo-primary", "team.io/owner": "x"},
			annotations: map[string]string{"b": "2"},
		},
		{
			name:        "star copies all but Flux's and the controllers' keys",
			prefixes:    []string{"*"},
			labels:      map[string]string{"app": "podinfo-primary", "a": "1", "team.io/owner": "x"},
			annotations: map[string]string{"b": "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultConfig()
			cfg.IncludeLabelPrefix = tt.prefixes
			f := newFixture(t, cfg)
			f.create(deployment(func(d *appsv1.Deployment) {
				d.Labels = map[string]string{"app": "podinfo", "a": "1", "team.io/owner": "x", "kustomize.toolkit.fluxcd.io/name": "apps"}
				d.Annotations = map[string]string{
					"b":                                 "2",
					"kustomize.toolkit.fluxcd.io/prune": "disabled",
					"deployment.kubernetes.io/revision": "7",
				}
			}))
			cd := f.canary("Deployment")
			f.must(f.workload(cd).EnsurePrimary(f.ctx(), cd))

			p := f.get("podinfo-primary", &appsv1.Deployment{})
			if !maps.Equal(p.GetLabels(), tt.labels) {
				t.Errorf("labels = %v, want %v", p.GetLabels(), tt.labels)
			}
			ann := maps.Clone(p.GetAnnotations())
			delete(ann, canary.RevisionAnnotation)
			if !maps.Equal(ann, tt.annotations) {
				t.Errorf("annotations = %v, want %v", ann, tt.annotations)
			}
		})
	}
}

func TestEnsurePrimary_RewritesAffinityAndTopologySpreadSelectors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	sel := func(v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": v}}
	}
	f.create(deployment(func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Affinity = &corev1.Affinity{
			PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
					{LabelSelector: sel("podinfo"), TopologyKey: "kubernetes.io/hostname"},
					{LabelSelector: sel("redis"), TopologyKey: "kubernetes.io/hostname"},
				},
			},
			PodAffinity: &corev1.PodAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
					Weight: 10,
					PodAffinityTerm: corev1.PodAffinityTerm{
						LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
							{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"podinfo", "redis"}},
						}},
						TopologyKey: "topology.kubernetes.io/zone",
					},
				}},
			},
		}
		d.Spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: sel("podinfo"),
		}}
	}))
	cd := f.canary("Deployment")
	f.must(f.workload(cd).EnsurePrimary(f.ctx(), cd))

	spec := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment).Spec.Template.Spec
	anti := spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if got := anti[0].LabelSelector.MatchLabels["app"]; got != "podinfo-primary" {
		t.Errorf("anti-affinity on the target's pods: app = %q, want podinfo-primary", got)
	}
	if got := anti[1].LabelSelector.MatchLabels["app"]; got != "redis" {
		t.Errorf("anti-affinity on other pods: app = %q, want redis unchanged", got)
	}
	values := spec.Affinity.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector.MatchExpressions[0].Values
	if want := []string{"podinfo-primary", "redis"}; len(values) != 2 || values[0] != want[0] || values[1] != want[1] {
		t.Errorf("affinity expression values = %v, want %v", values, want)
	}
	if got := spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels["app"]; got != "podinfo-primary" {
		t.Errorf("topology spread: app = %q, want podinfo-primary", got)
	}
	// The target is not changed.
	target := f.get("podinfo", &appsv1.Deployment{}).(*appsv1.Deployment)
	if got := target.Spec.Template.Spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels["app"]; got != "podinfo" {
		t.Errorf("target topology spread changed to %q", got)
	}
}

func TestEnsurePrimary_DaemonSetCopyLeavesOutParkingNodeSelector(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(daemonSet(func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd", canary.ScaleToZeroNodeSelector: "true"}
		ds.Spec.MinReadySeconds = 7
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	}))
	cd := f.canary("DaemonSet")
	f.must(f.workload(cd).EnsurePrimary(f.ctx(), cd))

	p := f.get("podinfo-primary", &appsv1.DaemonSet{}).(*appsv1.DaemonSet)
	if want := map[string]string{"disk": "ssd"}; !maps.Equal(p.Spec.Template.Spec.NodeSelector, want) {
		t.Errorf("nodeSelector = %v, want %v", p.Spec.Template.Spec.NodeSelector, want)
	}
	if p.Spec.MinReadySeconds != 7 || p.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		t.Errorf("rollout settings not copied: %+v", p.Spec)
	}
	if p.Spec.Selector.MatchLabels["app"] != "podinfo-primary" || p.Spec.Template.Labels["app"] != "podinfo-primary" {
		t.Errorf("selector %v, template labels %v: want app=podinfo-primary", p.Spec.Selector.MatchLabels, p.Spec.Template.Labels)
	}
	if !uuidPattern.MatchString(p.Spec.Template.Annotations[canary.FlaggerIDAnnotation]) {
		t.Errorf("flagger-id = %q, want a UUID", p.Spec.Template.Annotations[canary.FlaggerIDAnnotation])
	}
	assertControlledBy(t, p, cd)
}

func TestEnsurePrimary_LeavesExistingPrimaryTemplateAlone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment())
	cd := f.canary("Deployment")
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	update(f, "podinfo", &appsv1.Deployment{}, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.1.0"
	})

	f.must(w.EnsurePrimary(f.ctx(), cd))

	p := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment)
	if got := p.Spec.Template.Spec.Containers[0].Image; got != "ghcr.io/stefanprodan/podinfo:6.0.0" {
		t.Errorf("image = %s, want the bootstrap image kept until Promote", got)
	}
}

func TestEnsurePrimary_UsesOneReplicaWhenTargetIsAtZero(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](0) }))
	cd := f.canary("Deployment")
	f.must(f.workload(cd).EnsurePrimary(f.ctx(), cd))

	if got := ptr.Deref(f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment).Spec.Replicas, 0); got != 1 {
		t.Errorf("replicas = %d, want 1", got)
	}
}

func TestObserve_ReportsMissingPrimaryAndTargetPorts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment())
	cd := f.canary("Deployment")

	st := f.observe(f.workload(cd), cd)

	if st.Primary.Exists || st.Primary.Ready || st.Primary.Message != "Deployment podinfo-primary does not exist yet" {
		t.Errorf("primary = %+v, want not existing with a message", st.Primary)
	}
	if !st.Target.Exists || st.Target.Replicas != 3 || st.Target.Revision != st.Revision {
		t.Errorf("target = %+v, want existing with 3 replicas and revision %s", st.Target, st.Revision)
	}
	if st.SelectorLabel != "app" || st.SelectorValue != "podinfo" {
		t.Errorf("selector = %s=%s, want app=podinfo", st.SelectorLabel, st.SelectorValue)
	}
	var ports []corev1.ContainerPort
	for _, c := range st.Containers {
		ports = append(ports, c.Ports...)
	}
	if len(ports) != 2 || ports[0].Name != "http" || ports[1].ContainerPort != 9999 {
		t.Errorf("container ports = %+v, want http 9898 and grpc 9999", ports)
	}
}

func TestObserve_PicksFirstSelectorLabelInFlagOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(func(d *appsv1.Deployment) {
		d.Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "podinfo", "name": "pi"}
		d.Spec.Template.Labels = map[string]string{"app.kubernetes.io/name": "podinfo", "name": "pi"}
	}))
	cd := f.canary("Deployment")

	st := f.observe(f.workload(cd), cd)

	if st.SelectorLabel != "name" || st.SelectorValue != "pi" {
		t.Errorf("selector = %s=%s, want name=pi", st.SelectorLabel, st.SelectorValue)
	}
}
