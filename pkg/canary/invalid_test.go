package canary_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/problem"
)

func TestObserve_BadInputIsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(f *fixture)
		kind    string
		mutate  func(*flaggerv1beta1.Canary)
		reason  string
		message string // with NS for the namespace
	}{
		{
			name: "missing target", kind: "Deployment", setup: func(*fixture) {},
			reason:  "TargetNotFound",
			message: "Deployment podinfo not found in namespace NS: create it or fix spec.targetRef",
		},
		{
			name: "missing DaemonSet target", kind: "DaemonSet", setup: func(*fixture) {},
			reason:  "TargetNotFound",
			message: "DaemonSet podinfo not found in namespace NS: create it or fix spec.targetRef",
		},
		{
			name: "no selector label", kind: "Deployment",
			setup: func(f *fixture) {
				f.create(deployment(func(d *appsv1.Deployment) {
					d.Spec.Selector.MatchLabels = map[string]string{"component": "podinfo"}
					d.Spec.Template.Labels = map[string]string{"component": "podinfo"}
				}))
			},
			reason:  "SelectorLabelNotFound",
			message: "Deployment podinfo has none of the selector labels [app name app.kubernetes.io/name] in spec.selector.matchLabels: add one of them or change the -selector-labels flag",
		},
		{
			name: "missing HPA", kind: "Deployment", mutate: withHPA,
			setup:   func(f *fixture) { f.create(deployment()) },
			reason:  "AutoscalerNotFound",
			message: "HorizontalPodAutoscaler podinfo not found in namespace NS: create it or fix spec.autoscalerRef",
		},
		{
			name: "missing ScaledObject", kind: "Deployment", mutate: withScaledObject,
			setup:   func(f *fixture) { f.create(deployment()) },
			reason:  "AutoscalerNotFound",
			message: "ScaledObject podinfo not found in namespace NS: create it or fix spec.autoscalerRef",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, defaultConfig())
			tt.setup(f)
			var mutate []func(*flaggerv1beta1.Canary)
			if tt.mutate != nil {
				mutate = append(mutate, tt.mutate)
			}
			cd := f.canary(tt.kind, mutate...)
			w := f.workload(cd)
			want := strings.ReplaceAll(tt.message, "NS", f.ns)

			ops := map[string]func(context.Context, *flaggerv1beta1.Canary) error{
				"Observe": func(ctx context.Context, cd *flaggerv1beta1.Canary) error {
					_, err := w.Observe(ctx, cd)
					return err
				},
				"EnsurePrimary": w.EnsurePrimary,
				"Promote": func(ctx context.Context, cd *flaggerv1beta1.Canary) error {
					return w.Promote(ctx, cd, "0123456789abcdef")
				},
			}
			for op, call := range ops {
				err := call(f.ctx(), cd)
				ie, ok := problem.As(err)
				if !ok || string(ie.Reason) != tt.reason || ie.Message != want {
					t.Errorf("%s: err = %v, want Invalid %s %q", op, err, tt.reason, want)
				}
			}
			if f.writes.Load() != 0 {
				t.Errorf("%d writes for an invalid Canary, want none", f.writes.Load())
			}
		})
	}
}

func TestScale_MissingTargetIsInvalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	for _, kind := range []string{"Deployment", "DaemonSet"} {
		cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: kind, Name: "podinfo"}}}
		cd.Namespace = f.ns
		w := f.workload(cd)
		for op, err := range map[string]error{
			"ScaleTargetToZero": w.ScaleTargetToZero(f.ctx(), cd),
			"ScaleTargetUp":     w.ScaleTargetUp(f.ctx(), cd),
		} {
			if ie, ok := problem.As(err); !ok || ie.Reason != "TargetNotFound" {
				t.Errorf("%s %s: err = %v, want Invalid TargetNotFound", kind, op, err)
			}
		}
	}
}

func TestNew_UnsupportedTargetIsInvalid(t *testing.T) {
	t.Parallel()
	tests := []flaggerv1beta1.LocalObjectReference{
		{APIVersion: "serving.knative.dev/v1alpha1", Kind: "Service", Name: "podinfo"},
		{APIVersion: "apps/v1beta1", Kind: "Deployment", Name: "podinfo"},
		{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "podinfo"},
	}
	for _, ref := range tests {
		cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{TargetRef: ref}}
		_, err := canary.New(cd, canary.Deps{})
		ie, ok := problem.As(err)
		if !ok || ie.Reason != "UnsupportedTarget" {
			t.Errorf("%s %s: err = %v, want Invalid UnsupportedTarget", ref.APIVersion, ref.Kind, err)
			continue
		}
		if want := "Sluice manages apps/v1 Deployment and DaemonSet, v1 Service and serving.knative.dev/v1 Service (Knative) targets"; !strings.HasSuffix(ie.Message, want) {
			t.Errorf("%s %s: message %q, want it to end with %q", ref.APIVersion, ref.Kind, ie.Message, want)
		}
	}
	for _, ref := range []flaggerv1beta1.LocalObjectReference{
		{APIVersion: "apps/v1", Kind: "Deployment"}, {APIVersion: "apps/v1", Kind: "DaemonSet"},
		{APIVersion: "v1", Kind: "Service"}, {APIVersion: "serving.knative.dev/v1", Kind: "Service"},
	} {
		if _, err := canary.New(&flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{TargetRef: ref}}, canary.Deps{}); err != nil {
			t.Errorf("%s %s: %v, want a Workload", ref.APIVersion, ref.Kind, err)
		}
	}
}

// failingGets returns a client whose Gets of objects of type T fail with
// err, and pass through otherwise.
func failingGets[T client.Object](err error) client.WithWatch {
	return interceptor.NewClient(k8s, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(T); ok {
				return err
			}
			return c.Get(ctx, key, obj, opts...)
		},
	})
}

func TestObserve_TransientAPIErrorIsNotInvalid(t *testing.T) {
	t.Parallel()
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	transient := []struct {
		name string
		err  error
	}{
		{"timeout", apierrors.NewServerTimeout(gr, "get", 1)},
		{"etcd leader change", apierrors.NewInternalError(errors.New("etcdserver: leader changed"))},
		{"unavailable", apierrors.NewServiceUnavailable("try again")},
	}
	where := []struct {
		name  string
		deps  func(d canary.Deps, err error) canary.Deps
		scale bool // whether the scale operations read it
	}{
		{name: "workload read", scale: true, deps: func(d canary.Deps, err error) canary.Deps {
			d.Client = failingGets[*appsv1.Deployment](err)
			return d
		}},
		{name: "config read", deps: func(d canary.Deps, err error) canary.Deps {
			d.Reader = failingGets[*corev1.ConfigMap](err)
			return d
		}},
		{name: "autoscaler read", deps: func(d canary.Deps, err error) canary.Deps {
			// Autoscalers are read from the (cached) Client.
			d.Client = failingGets[*autoscalingv2.HorizontalPodAutoscaler](err)
			return d
		}},
	}
	f := newFixture(t, defaultConfig())
	createConfigs(f)
	f.create(configTarget(), hpa(1, 3))
	cd := f.canary("Deployment", withHPA)
	for _, wh := range where {
		for _, tr := range transient {
			w, err := canary.New(cd, wh.deps(f.deps, tr.err))
			f.must(err)
			_, observeErr := w.Observe(f.ctx(), cd)
			errs := map[string]error{
				"Observe":       observeErr,
				"EnsurePrimary": w.EnsurePrimary(f.ctx(), cd),
				"Promote":       w.Promote(f.ctx(), cd, "0123456789abcdef"),
			}
			if wh.scale {
				errs["ScaleTargetToZero"] = w.ScaleTargetToZero(f.ctx(), cd)
				errs["ScaleTargetUp"] = w.ScaleTargetUp(f.ctx(), cd)
			}
			for op, err := range errs {
				if err == nil {
					t.Errorf("%s fails with %s: %s returned nil", wh.name, tr.name, op)
					continue
				}
				if _, ok := problem.As(err); ok {
					t.Errorf("%s fails with %s: %s returned Invalid %v, want a plain error", wh.name, tr.name, op, err)
				}
				if !errors.Is(err, tr.err) {
					t.Errorf("%s fails with %s: %s returned %v, which does not wrap the API error", wh.name, tr.name, op, err)
				}
			}
		}
	}
	if n := f.writes.Load(); n != 0 {
		t.Errorf("%d writes while reads failed, want none", n)
	}
}
