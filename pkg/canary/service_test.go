package canary_test

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/problem"
)

// targetService returns podinfo's Service, the target of a Service Canary.
func targetService(mutate ...func(*corev1.Service)) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "podinfo",
			Labels:      map[string]string{"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
			Annotations: map[string]string{"prometheus.io/scrape": "true"},
		},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "podinfo"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9898, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
	for _, m := range mutate {
		m(svc)
	}
	return svc
}

// serviceCanary creates a Canary for the Service podinfo.
func serviceCanary(f *fixture) *flaggerv1beta1.Canary {
	return f.canary("Service", func(cd *flaggerv1beta1.Canary) { cd.Spec.TargetRef.APIVersion = "v1" })
}

func getService(f *fixture, name string) *corev1.Service {
	f.t.Helper()
	return f.get(name, &corev1.Service{}).(*corev1.Service)
}

func TestEnsurePrimary_ServiceTargetIsCopiedToPrimaryAndCanary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*corev1.Service)
		check  func(t *testing.T, target, copied *corev1.Service)
	}{
		{
			name: "ClusterIP: each copy gets its own address",
			check: func(t *testing.T, target, copied *corev1.Service) {
				if copied.Spec.ClusterIP == "" || copied.Spec.ClusterIP == target.Spec.ClusterIP {
					t.Errorf("%s: clusterIP = %q, want one of its own (the target's is %s)", copied.Name, copied.Spec.ClusterIP, target.Spec.ClusterIP)
				}
			},
		},
		{
			name:   "headless: the copies stay headless",
			mutate: func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone },
			check: func(t *testing.T, _, copied *corev1.Service) {
				if copied.Spec.ClusterIP != corev1.ClusterIPNone {
					t.Errorf("%s: clusterIP = %q, want None", copied.Name, copied.Spec.ClusterIP)
				}
			},
		},
		{
			name:   "NodePort: each copy gets its own node port",
			mutate: func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort },
			check: func(t *testing.T, target, copied *corev1.Service) {
				if p := copied.Spec.Ports[0].NodePort; p == 0 || p == target.Spec.Ports[0].NodePort {
					t.Errorf("%s: nodePort = %d, want one of its own (the target's is %d)", copied.Name, p, target.Spec.Ports[0].NodePort)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, defaultConfig())
			var mutate []func(*corev1.Service)
			if tt.mutate != nil {
				mutate = append(mutate, tt.mutate)
			}
			f.create(targetService(mutate...))
			cd := serviceCanary(f)
			w := f.workload(cd)

			f.must(w.EnsurePrimary(f.ctx(), cd))

			target := getService(f, "podinfo")
			rev := f.observe(w, cd).Revision
			for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
				copied := getService(f, name)
				assertControlledBy(t, copied, cd)
				if copied.Spec.Selector["app"] != "podinfo" || len(copied.Spec.Ports) != 1 || copied.Spec.Ports[0].Port != 9898 || copied.Spec.Type != target.Spec.Type {
					t.Errorf("%s: spec = %+v, want the target's selector, ports and type", name, copied.Spec)
				}
				if copied.Labels["app"] != "podinfo" || copied.Labels["kustomize.toolkit.fluxcd.io/name"] != "" || copied.Annotations["prometheus.io/scrape"] != "true" {
					t.Errorf("%s: labels %v, annotations %v, want the target's without Flux's", name, copied.Labels, copied.Annotations)
				}
				tt.check(t, target, copied)
			}
			if got := getService(f, "podinfo-primary").Annotations[canary.RevisionAnnotation]; got != rev {
				t.Errorf("primary %s = %q, want the target's revision %q", canary.RevisionAnnotation, got, rev)
			}
			f.writes.Store(0)
			f.must(w.EnsurePrimary(f.ctx(), cd))
			if n := f.writes.Load(); n != 0 {
				t.Errorf("%d writes ensuring copies that are current, want none", n)
			}
		})
	}
}

func TestService_CanaryCopyFollowsTheTargetAndPromotionCopiesIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(targetService())
	cd := serviceCanary(f)
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	st := f.observe(w, cd)
	if !st.OwnServices || !st.Target.Ready || !st.Primary.Ready || st.Primary.Revision != st.Revision {
		t.Fatalf("state = %+v, want own Services, both ready, the primary on the target's revision", st)
	}
	first := st.Revision

	update(f, "podinfo", &corev1.Service{}, func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "podinfo-v2"} })
	st = f.observe(w, cd)
	if st.Revision == first || st.Primary.Revision != first {
		t.Fatalf("after the change: revision %s, primary %s; want a new revision and the primary on %s", st.Revision, st.Primary.Revision, first)
	}

	f.must(w.ScaleTargetUp(f.ctx(), cd))
	if got := getService(f, "podinfo-canary").Spec.Selector["app"]; got != "podinfo-v2" {
		t.Errorf("canary copy selects app=%s, want the target's new podinfo-v2", got)
	}
	if got := getService(f, "podinfo-primary").Spec.Selector["app"]; got != "podinfo" {
		t.Errorf("primary copy selects app=%s before the promotion, want podinfo", got)
	}

	if err := w.Promote(f.ctx(), cd, first); !errors.Is(err, canary.ErrRevisionChanged) {
		t.Errorf("promoting a revision the target no longer holds: %v, want ErrRevisionChanged", err)
	}
	f.must(w.Promote(f.ctx(), cd, st.Revision))
	primary := getService(f, "podinfo-primary")
	if primary.Spec.Selector["app"] != "podinfo-v2" || primary.Annotations[canary.RevisionAnnotation] != st.Revision {
		t.Errorf("primary after the promotion: selector %v, revision %q; want app=podinfo-v2 and %s", primary.Spec.Selector, primary.Annotations[canary.RevisionAnnotation], st.Revision)
	}
	if got := f.observe(w, cd).Primary.Revision; got != st.Revision {
		t.Errorf("observed primary revision %s, want %s", got, st.Revision)
	}
	// Parking and restoring a Service do nothing.
	f.writes.Store(0)
	f.must(w.ScaleTargetToZero(f.ctx(), cd))
	f.must(w.RestoreTarget(f.ctx(), cd))
	f.must(w.ScalePrimaryAtLeast(f.ctx(), cd, 5))
	f.must(w.Promote(f.ctx(), cd, st.Revision))
	if n := f.writes.Load(); n != 0 {
		t.Errorf("%d writes, want none", n)
	}
}

func TestObserve_ServiceTargetProblems(t *testing.T) {
	t.Parallel()
	t.Run("a copy someone else owns", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, defaultConfig())
		f.create(targetService(), targetService(func(s *corev1.Service) { s.Name = "podinfo-canary" }))
		cd := serviceCanary(f)
		_, err := f.workload(cd).Observe(f.ctx(), cd)
		if p, ok := problem.As(err); !ok || p.Reason != problem.NotOwned {
			t.Errorf("err = %v, want a problem %s", err, problem.NotOwned)
		}
		if err := f.workload(cd).EnsurePrimary(f.ctx(), cd); !problem.Is(err, problem.NotOwned) {
			t.Errorf("EnsurePrimary: %v, want a problem %s and no write to the Service", err, problem.NotOwned)
		}
	})
	t.Run("a missing target, with the primary copy still there", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, defaultConfig())
		f.create(targetService())
		cd := serviceCanary(f)
		w := f.workload(cd)
		f.must(w.EnsurePrimary(f.ctx(), cd))
		f.must(k8s.Delete(f.ctx(), targetService(func(s *corev1.Service) { s.Namespace = f.ns })))
		st, err := w.Observe(f.ctx(), cd)
		if p, ok := problem.As(err); !ok || p.Reason != problem.TargetNotFound {
			t.Fatalf("err = %v, want a problem %s", err, problem.TargetNotFound)
		}
		if st == nil || !st.Primary.Exists || st.Target.Exists {
			t.Errorf("state = %+v, want the primary copy reported, so that a release can be rolled back", st)
		}
	})
}

func TestObserve_ServiceCopyWrittenByFlaggerHoldsTheTargetsRevision(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(targetService())
	cd := serviceCanary(f)
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	// Flagger's copy: the same spec, no revision annotation.
	update(f, "podinfo-primary", &corev1.Service{}, func(s *corev1.Service) { delete(s.Annotations, canary.RevisionAnnotation) })

	st := f.observe(w, cd)
	if st.Primary.Revision != st.Revision {
		t.Errorf("primary revision %q, want the target's %q: the copy holds its spec", st.Primary.Revision, st.Revision)
	}
	update(f, "podinfo-primary", &corev1.Service{}, func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "old"} })
	if got := f.observe(w, cd).Primary.Revision; got != "" {
		t.Errorf("primary revision %q for a copy of another spec, want none", got)
	}
}
