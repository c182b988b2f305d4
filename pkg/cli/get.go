package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

// getCommand is `get NAME [--watch]`.
func (a *app) getCommand() *cobra.Command {
	var watchFlag bool
	pf := newPrintFlags()
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a Canary as a tree: workloads, Services, routing weights, webhooks and the analysis history",
		Example: `  kubectl sluice get podinfo -n test
  kubectl sluice get podinfo -n test --watch
  kubectl sluice get podinfo -n test -o yaml`,
		Args: nameArg("get NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cd, cs, err := a.getCanary(ctx, args[0])
			if err != nil {
				return err
			}
			if pf.structured() {
				if watchFlag {
					return errors.New("--watch shows the tree; it cannot be combined with -o " + pf.format())
				}
				pr, err := pf.printer()
				if err != nil {
					return err
				}
				return pr.PrintObj(typed(cd), a.out())
			}
			if !watchFlag {
				return renderTree(a.out(), a.observe(ctx, cs, cd), a.now(), a.width())
			}
			return a.watch(ctx, cs, cd)
		},
	}
	cmd.Flags().BoolVarP(&watchFlag, "watch", "w", false,
		"Keep watching and show every change: the tree is redrawn on a terminal, one line per change is appended otherwise.")
	pf.addFlags(cmd)
	return cmd
}

// watch shows the Canary on every change of it or of its workloads, as
// the API server's watch reports them, until the context ends.
func (a *app) watch(ctx context.Context, cs *clients, cd *flaggerv1beta1.Canary) error {
	changes := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	ns, ref := cd.Namespace, cd.Spec.TargetRef
	go func() { errs <- watchNamed(ctx, cs.client, &flaggerv1beta1.CanaryList{}, ns, cd.Name, changes) }()
	if ref.Kind == "Deployment" || ref.Kind == "DaemonSet" {
		for _, name := range []string{ref.Name, ref.Name + "-primary"} {
			var list client.ObjectList = &appsv1.DeploymentList{}
			if ref.Kind == "DaemonSet" {
				list = &appsv1.DaemonSetList{}
			}
			go func() { errs <- watchNamed(ctx, cs.client, list, ns, name, changes) }()
		}
	}
	last := ""
	for {
		cur := &flaggerv1beta1.Canary{}
		err := cs.client.Get(ctx, client.ObjectKeyFromObject(cd), cur)
		switch {
		case apierrors.IsNotFound(err):
			fmt.Fprintf(a.out(), "%s  canary %s/%s was deleted\n", clock(a.now()), cd.Namespace, cd.Name)
			return nil
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			return canaryError(err, cd.Name, cd.Namespace)
		}
		if a.terminal() {
			var b strings.Builder
			if err := renderTree(&b, a.observe(ctx, cs, cur), a.now(), a.width()); err != nil {
				return err
			}
			if s := b.String(); s != last {
				fmt.Fprint(a.out(), clearScreen+s+"\nWatching for changes; Ctrl-C to stop.\n")
				last = s
			}
		} else if line := watchLine(cur); line != last {
			fmt.Fprintf(a.out(), "%s  %s\n", clock(a.now()), line)
			last = line
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-changes:
		}
	}
}

// watchLine is one line of get --watch in a pipe: the phase, the progress
// and the newest message, with no escape codes.
func watchLine(cd *flaggerv1beta1.Canary) string {
	s := cd.Status
	return fmt.Sprintf("%-16s weight %3d%%  iteration %d  failed %d/%d  %s", phaseLabel(cd), s.CanaryWeight, s.Iterations,
		s.FailedChecks, threshold(cd), headline(cd))
}

// watchNamed watches one object by name and signals every change on
// changes, re-establishing the watch when the server ends it. It returns
// when the context ends, or with the error that stopped it.
func watchNamed(ctx context.Context, c client.WithWatch, list client.ObjectList, ns, name string, changes chan<- struct{}) error {
	sel := fields.OneTermEqualSelector("metadata.name", name)
	for ctx.Err() == nil {
		if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingFieldsSelector{Selector: sel}); err != nil {
			return fmt.Errorf("watching %s %s/%s: %w", kindOf(list), ns, name, err) // the caller ignores it once ctx ended
		}
		watcher := watchFunc(func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = sel.String()
			return c.Watch(ctx, list, &client.ListOptions{Namespace: ns, Raw: &opts})
		})
		rw, err := watchtools.NewRetryWatcherWithContext(ctx, list.GetResourceVersion(), watcher)
		if err != nil {
			return fmt.Errorf("watching %s %s/%s: %w", kindOf(list), ns, name, err)
		}
		// A change between the caller's first read and this list is not
		// in the watch: have the caller read again.
		signal(changes)
		for ev := range rw.ResultChan() {
			if ev.Type == watch.Error {
				break // expired: list again and watch from there
			}
			signal(changes)
		}
		rw.Stop()
		<-rw.Done()
		select { // do not list in a tight loop when watches keep failing
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// signal records a change; one pending change stands for any number.
func signal(changes chan<- struct{}) {
	select {
	case changes <- struct{}{}:
	default:
	}
}

// watchFunc adapts a function to cache.WatcherWithContext.
type watchFunc func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)

func (f watchFunc) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return f(ctx, opts)
}

func kindOf(list client.ObjectList) string {
	switch list.(type) {
	case *flaggerv1beta1.CanaryList:
		return "Canary"
	case *appsv1.DaemonSetList:
		return "DaemonSet"
	}
	return "Deployment"
}
