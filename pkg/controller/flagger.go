package controller

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// FlaggerLease is the name of the Lease Flagger's replicas elect a leader
// with (-enable-leader-election).
const FlaggerLease = "flagger-leader-election"

// flaggerLabels are the labels of Flagger's Deployment in its Helm chart
// and in its kustomize base.
var flaggerLabels = []client.MatchingLabels{{"app.kubernetes.io/name": "flagger"}, {"app": "flagger"}}

// FlaggerDetector tells whether a Flagger controller is running in the
// cluster: a leader-election Lease that is held and renewed within its
// duration, or a Deployment of Flagger with ready replicas. Two controllers
// acting on the same Canaries would fight over every object, so Sluice
// does not act while one runs.
type FlaggerDetector struct {
	// Reader reads Leases and Deployments directly from the API server.
	Reader client.Reader
	// LeaseNamespaces are where Flagger's Lease may be: its default
	// kube-system and the namespaces Flagger is usually installed in.
	LeaseNamespaces []string
	// Interval is how often the cluster is looked at; 0 means 30s.
	Interval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	live atomic.Pointer[string]
}

// Live returns what shows that Flagger runs, or "" when nothing does.
func (f *FlaggerDetector) Live() string {
	if f == nil {
		return ""
	}
	if s := f.live.Load(); s != nil {
		return *s
	}
	return ""
}

// Start looks for Flagger now and then every Interval until ctx ends. It
// implements manager.Runnable; it runs on every replica, not only the
// leader, so that a standby knows before it takes over.
func (f *FlaggerDetector) Start(ctx context.Context) error {
	interval := f.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	logger := log.FromContext(ctx).WithName("flagger-detector")
	for {
		live, err := f.Check(ctx)
		switch {
		case err != nil:
			logger.Error(err, "Looking for a running Flagger failed; keeping the last answer")
		case live != f.Live():
			if live != "" {
				logger.Info("Flagger is running: Sluice does not act on any Canary until it stops", "evidence", live)
			} else if f.Live() != "" {
				logger.Info("Flagger no longer runs: Sluice acts on the Canaries")
			}
			f.live.Store(&live)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: the
// detector runs on every replica.
func (f *FlaggerDetector) NeedLeaderElection() bool { return false }

// Check looks at the cluster once and returns what shows that Flagger
// runs, or "".
func (f *FlaggerDetector) Check(ctx context.Context) (string, error) {
	now := time.Now()
	if f.Now != nil {
		now = f.Now()
	}
	for _, ns := range f.LeaseNamespaces {
		var lease coordinationv1.Lease
		err := f.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: FlaggerLease}, &lease)
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("reading Lease %s/%s: %w", ns, FlaggerLease, err)
		}
		if held, ago := leaseHeld(&lease, now); held {
			return fmt.Sprintf("Flagger's Lease %s/%s is held by %s and was renewed %s ago", ns, FlaggerLease,
				ptr.Deref(lease.Spec.HolderIdentity, ""), ago.Round(time.Second)), nil
		}
	}
	for _, labels := range flaggerLabels {
		var list appsv1.DeploymentList
		if err := f.Reader.List(ctx, &list, labels); err != nil {
			if apierrors.IsForbidden(err) {
				continue
			}
			return "", fmt.Errorf("listing Flagger's Deployments: %w", err)
		}
		for _, d := range list.Items {
			if d.Status.ReadyReplicas > 0 && ptr.Deref(d.Spec.Replicas, 1) > 0 {
				return fmt.Sprintf("Deployment %s/%s runs Flagger with %d ready replicas", d.Namespace, d.Name, d.Status.ReadyReplicas), nil
			}
		}
	}
	return "", nil
}

// leaseHeld reports whether a Lease has a holder that renewed it within its
// duration, and how long ago it did.
func leaseHeld(l *coordinationv1.Lease, now time.Time) (bool, time.Duration) {
	if ptr.Deref(l.Spec.HolderIdentity, "") == "" || l.Spec.RenewTime == nil {
		return false, 0
	}
	ago := now.Sub(l.Spec.RenewTime.Time)
	duration := time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, 60)) * time.Second
	return ago < duration, ago
}
