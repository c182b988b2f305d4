package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sluicedev/sluice/internal/testenv"
)

// Options configure Start.
type Options struct {
	// Nodes is how many fake Nodes KWOK runs. Zero means 1.
	Nodes int
	// Dir receives the components' logs (<component>.log), their
	// kubeconfigs and the admin kubeconfig. It is created if missing; empty
	// means a new temporary directory.
	Dir string
	// Keep leaves Dir in place on Stop, for a person to read the logs or use
	// the kubeconfig afterwards. Dir is always kept when Start fails.
	Keep bool
	// Log receives one line per step of Start and Stop, with its duration.
	// Nil discards them.
	Log io.Writer
	// StartTimeout bounds how long Start waits for the components to become
	// healthy and the Nodes to become Ready. Zero means 2 minutes.
	StartTimeout time.Duration
	// CanaryCRDs, when set, are the flagger.app CRD files installed
	// instead of Sluice's (see testenv.Options.CanaryCRDs): a cluster as
	// Flagger's installation leaves it.
	CanaryCRDs []string
	// AuditServiceAccounts makes the API server write an audit log of every
	// request by a ServiceAccount (level Metadata) to AuditLogPath.
	AuditServiceAccounts bool
	// APIServerFlags are extra kube-apiserver flags, without the leading
	// dashes (for example "audit-policy-file" and "audit-log-path").
	APIServerFlags map[string]string
	// ControllerManagerFlags are appended to kube-controller-manager's
	// flags (for example "--kube-api-qps=300").
	ControllerManagerFlags []string
}

// Cluster is a running local control plane. Stop it when done; it also
// stops when the context given to Start ends.
type Cluster struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client is a client for Config with Scheme.
	Client client.Client
	// Scheme knows the built-in kinds, Sluice's kinds and the Istio and
	// Gateway API kinds, whose CRDs are installed.
	Scheme *runtime.Scheme
	// KubeconfigPath is an admin kubeconfig in Dir, for kubectl, for the
	// Sluice process and for the people watching a demo.
	KubeconfigPath string
	// Dir holds the logs and kubeconfigs (see Options.Dir).
	Dir string
	// AuditLogPath is the API server's audit log, one JSON event a line,
	// when Options.AuditServiceAccounts is set.
	AuditLogPath string
	// Nodes are the names of the fake Nodes, all Ready and untainted when
	// Start returns.
	Nodes []string

	env       *testenv.Env
	kcmFlags  []string
	procs     []*process
	log       io.Writer
	keep      bool
	removeDir bool

	// restartMu serializes RestartAPIServer and Stop; apiserver is the
	// kube-apiserver a restart started, nil while envtest's runs.
	restartMu sync.Mutex
	apiserver *process

	stopOnce sync.Once
	stopErr  error
	stopped  chan struct{}
}

// Start starts etcd, kube-apiserver (with Sluice's CRDs or opts.CanaryCRDs,
// and Istio's and Gateway API's), kube-controller-manager, kube-scheduler
// and KWOK, creates opts.Nodes fake Nodes and waits until they are Ready
// and schedulable. The binaries come from KUBEBUILDER_ASSETS or else the
// repository's bin/; Start names the make target that builds a missing one.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	begin := time.Now()
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	c := &Cluster{log: opts.Log, keep: opts.Keep, stopped: make(chan struct{}), kcmFlags: opts.ControllerManagerFlags}
	if c.log == nil {
		c.log = io.Discard
	}

	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	if err := c.makeDir(opts.Dir); err != nil {
		return nil, err
	}
	stages, err := kwokStages(ctx)
	if err != nil {
		return nil, err
	}

	step := time.Now()
	teOpts := testenv.Options{Istio: true, GatewayAPI: true, CanaryCRDs: opts.CanaryCRDs, APIServerFlags: map[string]string{}}
	for name, value := range opts.APIServerFlags {
		teOpts.APIServerFlags[name] = value
	}
	if opts.AuditServiceAccounts {
		audit, err := c.auditFlags()
		if err != nil {
			return nil, err
		}
		for name, value := range audit {
			teOpts.APIServerFlags[name] = value
		}
	}
	env, err := testenv.Start(teOpts)
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	c.env, c.Config, c.Client, c.Scheme = env, env.Config, env.Client, env.Scheme
	c.logf("started etcd and kube-apiserver at %s in %s", env.Config.Host, since(step))

	startCtx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := c.startComponents(startCtx, bins, stages); err != nil {
		return nil, c.abort(err)
	}
	step = time.Now()
	if err := c.createNodes(startCtx, opts.Nodes); err != nil {
		return nil, c.abort(err)
	}
	c.logf("%d fake Nodes Ready and schedulable in %s", opts.Nodes, since(step))
	c.logf("cluster up in %s; kubeconfig: %s", since(begin), c.KubeconfigPath)

	go func() {
		select {
		case <-ctx.Done():
			_ = c.Stop()
		case <-c.stopped:
		}
	}()
	return c, nil
}

// binaries are the paths of the components Start runs itself.
type binaries struct {
	controllerManager, scheduler, kwok string
}

// findBinaries locates kube-controller-manager, kube-scheduler and kwok
// where testenv looks for kube-apiserver and etcd.
func findBinaries() (binaries, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			return binaries{}, fmt.Errorf("locating bin/: %w", err)
		}
		dir = filepath.Join(root, "bin")
	}
	b := binaries{
		controllerManager: filepath.Join(dir, "kube-controller-manager"),
		scheduler:         filepath.Join(dir, "kube-scheduler"),
		kwok:              filepath.Join(dir, "kwok"),
	}
	for _, path := range []string{b.controllerManager, b.scheduler, b.kwok} {
		if _, err := os.Stat(path); err != nil {
			return binaries{}, fmt.Errorf("%s not found: run `make tools-e2e` (or `hack/tool.sh %s`) to build it: %w",
				path, filepath.Base(path), err)
		}
	}
	return b, nil
}

// makeDir creates the cluster's directory, or a temporary one when dir is
// empty, and remembers whether Stop may remove it.
func (c *Cluster) makeDir(dir string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sluice-cluster-")
		if err != nil {
			return fmt.Errorf("creating the cluster directory: %w", err)
		}
		c.Dir, c.removeDir = tmp, true
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolving the cluster directory %s: %w", dir, err)
	}
	if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
		c.removeDir = true
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return fmt.Errorf("creating the cluster directory: %w", err)
	}
	c.Dir = abs
	return nil
}

// startComponents writes the kubeconfigs and starts kube-controller-manager,
// kube-scheduler and KWOK, then waits until each answers its health check.
func (c *Cluster) startComponents(ctx context.Context, bins binaries, stages []string) error {
	var err error
	if c.KubeconfigPath, err = c.WriteKubeconfig("kubeconfig", "sluice-e2e-admin"); err != nil {
		return err
	}
	kcm, err := c.controllerManagerArgs()
	if err != nil {
		return err
	}
	kcm.flags = append(kcm.flags, c.kcmFlags...)
	sched, err := c.schedulerArgs()
	if err != nil {
		return err
	}
	kwok, err := c.kwokArgs(stages)
	if err != nil {
		return err
	}
	for _, comp := range []component{
		{name: "kube-controller-manager", path: bins.controllerManager, componentArgs: kcm},
		{name: "kube-scheduler", path: bins.scheduler, componentArgs: sched},
		{name: "kwok", path: bins.kwok, componentArgs: kwok},
	} {
		step := time.Now()
		p, err := startProcess(comp.name, comp.path, comp.flags, c.Dir)
		if err != nil {
			return err
		}
		c.procs = append(c.procs, p)
		if err := p.waitHealthy(ctx, comp.health); err != nil {
			return err
		}
		c.logf("started %s in %s (log: %s)", comp.name, since(step), p.logPath)
	}
	return nil
}

// component is a binary to start.
type component struct {
	name, path string
	componentArgs
}

// componentArgs are a component's flags and the URL that answers 200 OK
// once it runs.
type componentArgs struct {
	flags  []string
	health string
}

// controllerManagerArgs runs every controller (the node lifecycle
// controller removes the not-ready taint from new Nodes) with the
// credentials of a cluster admin, signing service-account tokens with the
// key envtest gave the API server.
func (c *Cluster) controllerManagerArgs() (componentArgs, error) {
	kubeconfig, err := c.WriteKubeconfig("kube-controller-manager.kubeconfig", "system:kube-controller-manager")
	if err != nil {
		return componentArgs{}, err
	}
	port, err := freePort()
	if err != nil {
		return componentArgs{}, err
	}
	certDir := c.env.Environment.ControlPlane.GetAPIServer().CertDir
	return componentArgs{
		flags: []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			// envtest's API server has no request-header CA to look up.
			"--authentication-skip-lookup=true",
			"--controllers=*",
			// KWOK renews node leases, but on two busy cores a renewal can
			// come late; a long grace period keeps the node lifecycle
			// controller from marking nodes (and their pods) not ready.
			"--node-monitor-grace-period=10m",
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			"--service-account-private-key-file=" + filepath.Join(certDir, "sa-signer.key"),
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
		},
		health: "https://127.0.0.1:" + strconv.Itoa(port) + "/healthz",
	}, nil
}

// schedulerArgs runs the default scheduler.
func (c *Cluster) schedulerArgs() (componentArgs, error) {
	kubeconfig, err := c.WriteKubeconfig("kube-scheduler.kubeconfig", "system:kube-scheduler")
	if err != nil {
		return componentArgs{}, err
	}
	port, err := freePort()
	if err != nil {
		return componentArgs{}, err
	}
	return componentArgs{
		flags: []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			// envtest's API server has no request-header CA to look up.
			"--authentication-skip-lookup=true",
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
		},
		health: "https://127.0.0.1:" + strconv.Itoa(port) + "/healthz",
	}, nil
}

// kwokArgs runs KWOK on the Nodes annotated as fake, with the Stage files
// that make Nodes Ready and heartbeat, and Pods Ready, complete and deleted.
func (c *Cluster) kwokArgs(stages []string) (componentArgs, error) {
	kubeconfig, err := c.WriteKubeconfig("kwok.kubeconfig", "system:kwok")
	if err != nil {
		return componentArgs{}, err
	}
	port, err := freePort()
	if err != nil {
		return componentArgs{}, err
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--manage-nodes-with-annotation-selector=" + fakeNodeAnnotation + "=fake",
		// Without leases the nodes only heartbeat through their status,
		// which the node lifecycle controller reads as going not ready.
		"--node-lease-duration-seconds=40",
		"--cidr=" + podCIDR,
		"--server-address=127.0.0.1:" + strconv.Itoa(port),
	}
	for _, s := range stages {
		args = append(args, "--config="+s)
	}
	return componentArgs{flags: args, health: "http://127.0.0.1:" + strconv.Itoa(port) + "/healthz"}, nil
}

// WriteKubeconfig writes a kubeconfig for a new user in system:masters to
// Dir/name and returns its path. A program given its own user can be told
// apart from the others in the API server's audit log.
func (c *Cluster) WriteKubeconfig(name, user string) (string, error) {
	u, err := c.env.Environment.AddUser(envtest.User{Name: user, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("adding user %s: %w", user, err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("rendering the kubeconfig of %s: %w", user, err)
	}
	path := filepath.Join(c.Dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// abort stops what Start started after a failure, keeping Dir so that the
// logs can be read, and returns err with their location.
func (c *Cluster) abort(err error) error {
	c.keep = true
	return errors.Join(fmt.Errorf("%w (logs in %s)", err, c.Dir), c.Stop())
}

// Stop stops KWOK, kube-scheduler, kube-controller-manager, kube-apiserver
// and etcd, in that order, and removes Dir unless Options.Keep was set or
// Dir existed before Start. It is safe to call more than once and from
// several goroutines; every call returns the first call's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		close(c.stopped)
		begin := time.Now()
		var errs []error
		for i := len(c.procs) - 1; i >= 0; i-- {
			step := time.Now()
			errs = append(errs, c.procs[i].stop())
			c.logf("stopped %s in %s", c.procs[i].name, since(step))
		}
		c.restartMu.Lock()
		if c.apiserver != nil {
			errs = append(errs, c.apiserver.stop())
		}
		c.restartMu.Unlock()
		if c.env != nil {
			step := time.Now()
			err := c.env.Stop()
			c.logf("stopped kube-apiserver and etcd in %s", since(step))
			if err != nil {
				errs = append(errs, fmt.Errorf("stopping kube-apiserver and etcd: %w", err))
			}
		}
		if !c.keep && c.removeDir {
			if err := os.RemoveAll(c.Dir); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: %w", c.Dir, err))
			}
		}
		c.stopErr = errors.Join(errs...)
		c.logf("cluster stopped in %s", since(begin))
	})
	return c.stopErr
}

// logf writes one progress line to Options.Log.
func (c *Cluster) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(c.log, "cluster: "+format+"\n", args...)
}

// since is the time elapsed since t, rounded for people.
func since(t time.Time) time.Duration {
	return time.Since(t).Round(10 * time.Millisecond)
}
