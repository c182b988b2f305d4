package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// suspendCommand is `pause` (suspend true) or `resume` (suspend false).
func (a *app) suspendCommand(suspend bool) *cobra.Command {
	verb, short := "resume", "Let Sluice act on a paused Canary again (spec.suspend: false)"
	if suspend {
		verb, short = "pause", "Stop Sluice from acting on a Canary: no step, no promotion, no rollback (spec.suspend: true)"
	}
	return &cobra.Command{
		Use:     verb + " NAME",
		Short:   short,
		Example: fmt.Sprintf("  kubectl sluice %s podinfo -n test", verb),
		Args:    nameArg(verb + " NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cd, cs, err := a.getCanary(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			who := cd.Namespace + "/" + cd.Name
			if cd.Spec.Suspend == suspend {
				fmt.Fprintf(a.out(), "canary %s is already %s\n", who, map[bool]string{true: "paused", false: "running (not paused)"}[suspend])
				return nil
			}
			orig := cd.DeepCopy()
			cd.Spec.Suspend = suspend
			if err := cs.client.Patch(cmd.Context(), cd, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
				return canaryError(err, cd.Name, cd.Namespace)
			}
			if suspend {
				fmt.Fprintf(a.out(), "canary %s paused in phase %s: Sluice does not act on it until `kubectl sluice resume %s -n %s`\n",
					who, phaseOrNew(cd), cd.Name, cd.Namespace)
			} else {
				fmt.Fprintf(a.out(), "canary %s resumed in phase %s\n", who, phaseOrNew(cd))
			}
			return nil
		},
	}
}

// phaseOrNew is the Canary's phase, or New before Sluice set one.
func phaseOrNew(cd *flaggerv1beta1.Canary) string {
	if cd.Status.Phase == "" {
		return "New"
	}
	return string(cd.Status.Phase)
}
