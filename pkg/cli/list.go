package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// listCommand is `list`: every Canary of the namespace, or of all with -A.
func (a *app) listCommand() *cobra.Command {
	var (
		all      bool
		selector string
	)
	pf := newPrintFlags()
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List Canaries with their phase, weight, iteration and failed checks",
		Example: `  kubectl sluice list -n test
  kubectl sluice list -A -o wide
  kubectl sluice list -l team=checkout -o name`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := a.connect()
			if err != nil {
				return err
			}
			var opts []client.ListOption
			if !all {
				opts = append(opts, client.InNamespace(cs.namespace))
			}
			if selector != "" {
				sel, err := labels.Parse(selector)
				if err != nil {
					return fmt.Errorf("invalid --selector %q: %w", selector, err)
				}
				opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
			}
			var list flaggerv1beta1.CanaryList
			if err := cs.client.List(cmd.Context(), &list, opts...); err != nil {
				return canaryError(err, "", cs.namespace)
			}
			if len(list.Items) == 0 && !pf.structured() {
				where := fmt.Sprintf("in namespace %s", cs.namespace)
				if all {
					where = "in any namespace"
				}
				fmt.Fprintf(a.opts.Streams.ErrOut, "No canaries found %s.\n", where)
				return nil
			}
			return a.printList(&list, pf, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "List the Canaries of every namespace.")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "Label selector to filter on, such as team=checkout.")
	pf.addFlags(cmd)
	return cmd
}

// printFlags are -o and its printers: wide and the default table are
// Sluice's; json, yaml, name and the templates are cli-runtime's.
type printFlags struct {
	*genericclioptions.PrintFlags
}

func newPrintFlags() printFlags {
	return printFlags{genericclioptions.NewPrintFlags("")}
}

func (p printFlags) addFlags(cmd *cobra.Command) {
	p.AddFlags(cmd)
	f := cmd.Flags().Lookup("output")
	f.Usage = "Output format: wide, json, yaml, name (or go-template, jsonpath, as kubectl)."
}

func (p printFlags) format() string { return *p.OutputFormat }

// structured reports whether the output is for programs (json, yaml,
// name, templates) rather than a table or a tree.
func (p printFlags) structured() bool { return p.format() != "" && p.format() != "wide" }

// printer returns cli-runtime's printer for a structured format.
func (p printFlags) printer() (printers.ResourcePrinter, error) {
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	p.WithTypeSetter(scheme)
	pr, err := p.ToPrinter()
	if err != nil {
		return nil, fmt.Errorf("-o %s: %w", p.format(), err)
	}
	return pr, nil
}

func (a *app) printList(list *flaggerv1beta1.CanaryList, pf printFlags, all bool) error {
	if pf.structured() {
		pr, err := pf.printer()
		if err != nil {
			return err
		}
		if pf.format() == "name" {
			for i := range list.Items {
				if err := pr.PrintObj(typed(&list.Items[i]), a.out()); err != nil {
					return err
				}
			}
			return nil
		}
		for i := range list.Items {
			typed(&list.Items[i])
		}
		return pr.PrintObj(list, a.out())
	}
	return a.printTable(a.out(), list.Items, all, pf.format() == "wide")
}

// typed sets the kind of a Canary read from a list, whose items may come
// without it.
func typed(cd *flaggerv1beta1.Canary) *flaggerv1beta1.Canary {
	cd.SetGroupVersionKind(flaggerv1beta1.GroupVersion.WithKind("Canary"))
	return cd
}

func (a *app) printTable(out io.Writer, items []flaggerv1beta1.Canary, all, wide bool) error {
	w := printers.GetNewTabWriter(out)
	cols := []string{"NAME", "PHASE", "WEIGHT", "ITERATION", "FAILED", "LAST CHANGE"}
	if all {
		cols = append([]string{"NAMESPACE"}, cols...)
	}
	if wide {
		cols = append(cols, "PROVIDER", "STRATEGY", "TARGET", "INTERVAL", "MESSAGE")
	}
	fmt.Fprintln(w, strings.Join(cols, "\t"))
	for i := range items {
		cd := &items[i]
		s := cd.Status
		row := []string{cd.Name, phaseLabel(cd), fmt.Sprintf("%d%%", s.CanaryWeight), fmt.Sprint(s.Iterations),
			fmt.Sprintf("%d/%d", s.FailedChecks, threshold(cd)), age(a.now(), s.LastTransitionTime.Time)}
		if all {
			row = append([]string{cd.Namespace}, row...)
		}
		if wide {
			ref := cd.Spec.TargetRef
			row = append(row, a.providerOf(cd), string(strategyOf(cd, a.providerOf(cd))), ref.Kind+"/"+ref.Name,
				intervalOf(cd).String(), headline(cd))
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	return w.Flush()
}

// phaseLabel is the phase, with ",paused" when spec.suspend is set and
// ",invalid" when Sluice cannot act on the Canary.
func phaseLabel(cd *flaggerv1beta1.Canary) string {
	p := string(cd.Status.Phase)
	if p == "" {
		p = "New"
	}
	if cd.Spec.Suspend {
		p += ",paused"
	}
	if c := condition(cd, flaggerv1beta1.ValidType); c != nil && c.Status == "False" {
		p += ",invalid"
	}
	return p
}

// headline is the message that says most about the Canary now: why it is
// invalid, or the Promoted condition's message.
func headline(cd *flaggerv1beta1.Canary) string {
	if c := condition(cd, flaggerv1beta1.ValidType); c != nil && c.Status == "False" {
		return c.Reason + ": " + c.Message
	}
	if c := condition(cd, flaggerv1beta1.PromotedType); c != nil {
		return c.Message
	}
	return ""
}

func condition(cd *flaggerv1beta1.Canary, t flaggerv1beta1.CanaryConditionType) *flaggerv1beta1.CanaryCondition {
	for i := range cd.Status.Conditions {
		if cd.Status.Conditions[i].Type == t {
			return &cd.Status.Conditions[i]
		}
	}
	return nil
}
