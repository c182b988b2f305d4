package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Options configure a command tree. The binary sets only Streams; tests
// fix the clock, the width and whether the output is a terminal, so that
// golden output does not depend on when and where it runs.
type Options struct {
	// Streams are standard input, output and error.
	Streams genericiooptions.IOStreams
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Width is the number of columns text is fitted to; 0 means the
	// terminal's width when Out is a terminal, and 100 otherwise.
	Width int
	// Terminal says whether Out is a terminal, which decides whether
	// get --watch redraws the screen or appends lines; nil means detect.
	Terminal *bool
}

// app is what every command shares: the options, the connection flags and,
// once made, the clients.
type app struct {
	opts  Options
	flags *genericclioptions.ConfigFlags
	// meshProvider is the provider of Canaries without spec.provider, as
	// the controller's -mesh-provider flag.
	meshProvider string
	clients      *clients
}

// Main runs kubectl-sluice with args (without the program name) and returns
// the exit code: 0 on success, 1 after printing one line starting with
// "error: " to Streams.ErrOut.
func Main(ctx context.Context, args []string, o Options) int {
	cmd := NewCommand(o)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(o.Streams.ErrOut, "error: "+oneLine(err))
		return 1
	}
	return 0
}

// NewCommand returns the kubectl-sluice command tree.
func NewCommand(o Options) *cobra.Command {
	a := &app{opts: o, flags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{
		Use:   "kubectl-sluice",
		Short: "See, explain and steer Sluice canary releases",
		Long: `kubectl-sluice shows Sluice Canaries (flagger.app/v1beta1), explains why a release is where
it is and what happens next, and steers it: promote, abort, retry, pause, resume and the load
tester's manual gates. On PATH it also runs as "kubectl sluice".`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl sluice"},
	}
	root.SetIn(o.Streams.In)
	root.SetOut(o.Streams.Out)
	root.SetErr(o.Streams.ErrOut)
	a.flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVar(&a.meshProvider, "mesh-provider", "istio",
		"Traffic provider of Canaries without spec.provider: the value of the controller's -mesh-provider flag.")
	root.AddCommand(
		a.listCommand(),
		a.getCommand(),
		a.explainCommand(),
		a.requestCommand(requestPromote),
		a.requestCommand(requestAbort),
		a.requestCommand(requestRetry),
		a.suspendCommand(true),
		a.suspendCommand(false),
		a.gateCommand(),
		versionCommand(),
		completionCommand(),
	)
	return root
}

// now returns the current time of the command.
func (a *app) now() time.Time {
	if a.opts.Now != nil {
		return a.opts.Now()
	}
	return time.Now()
}

// terminal reports whether the output is a terminal.
func (a *app) terminal() bool {
	if a.opts.Terminal != nil {
		return *a.opts.Terminal
	}
	f, ok := a.opts.Streams.Out.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// width returns the number of columns to fit text to.
func (a *app) width() int {
	if a.opts.Width > 0 {
		return a.opts.Width
	}
	if f, ok := a.opts.Streams.Out.(*os.File); ok && a.terminal() {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
			return w
		}
	}
	return 100
}

func (a *app) out() io.Writer { return a.opts.Streams.Out }

// nameArg accepts exactly one argument, the name of a Canary.
func nameArg(usage string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch len(args) {
		case 1:
			return nil
		case 0:
			return fmt.Errorf("name the Canary: kubectl sluice %s", usage)
		default:
			return fmt.Errorf("one Canary at a time, got %d names: kubectl sluice %s", len(args), usage)
		}
	}
}

// oneLine joins the lines of an error into one, so that every failure is
// one line on standard error.
func oneLine(err error) string {
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) && !strings.Contains(msg, "deadline") {
		msg += " (timed out)"
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ")), " ")
}
