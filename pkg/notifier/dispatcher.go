package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Defaults of the Dispatcher's Options.
const (
	// DefaultQueueSize is how many deliveries may wait.
	DefaultQueueSize = 256
	// DefaultWorkers is how many deliveries run at once.
	DefaultWorkers = 2
	// DefaultTimeout bounds one attempt, as Flagger's 5s request timeout.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxAttempts bounds the attempts of one delivery.
	DefaultMaxAttempts = 4
	// DefaultBackoff is the wait after the first failed attempt.
	DefaultBackoff = time.Second
	// DefaultDrainTimeout bounds the drain when the manager stops.
	DefaultDrainTimeout = 10 * time.Second
	// maxDelay bounds the wait between two attempts.
	maxDelay = time.Minute
)

var (
	// ErrQueueFull is returned by Post when the delivery queue is full: the
	// message is dropped rather than delaying the caller.
	ErrQueueFull = errors.New("the notification queue is full; message dropped")
	// ErrClosed is returned by Post after Close.
	ErrClosed = errors.New("the notification dispatcher is closed")
)

// Options configure a Dispatcher. Only Reader is needed to honour the
// Canaries' analysis.alerts; the rest have defaults.
type Options struct {
	// Reader reads Canaries, AlertProviders and their Secrets. Pass the
	// manager's API reader (uncached), as Flagger reads Secrets: a cached
	// client would watch every Secret in the cluster. Nil means only the
	// global notifier is used.
	Reader client.Reader
	// Global is the notifier of the -slack-* and -msteams-* flags, which
	// receives every message of the Canaries without analysis.alerts.
	Global GlobalConfig
	// ClusterName is shown in every message when set (-cluster-name).
	ClusterName string
	// NoCrossNamespaceRefs refuses AlertProviders in another namespace than
	// the Canary's (-no-cross-namespace-refs).
	NoCrossNamespaceRefs bool
	// HTTPClient is the base client of every notifier; nil means a default
	// one. Tests use it to reach httptest servers.
	HTTPClient *http.Client
	// Logger receives one line per failed delivery.
	Logger logr.Logger
	// Registerer, when set, registers sluice_notifications_sent_total and
	// sluice_notification_failures_total (label provider: the notifier
	// kind). Use controller-runtime's metrics.Registry.
	Registerer prometheus.Registerer
	// QueueSize is how many deliveries may wait; more are dropped and
	// counted as failures. Default DefaultQueueSize.
	QueueSize int
	// Workers is how many deliveries run at once. Default DefaultWorkers.
	Workers int
	// Timeout bounds one attempt of a delivery. Default DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of a delivery. Default
	// DefaultMaxAttempts.
	MaxAttempts int
	// Backoff is the wait after the first failed attempt; it doubles after
	// each further one, up to a minute, and is at least what a 429 answer
	// asks for. Default DefaultBackoff.
	Backoff time.Duration
	// DrainTimeout bounds how long Start drains the queue when the manager
	// stops. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
}

// target is one notifier a message may go to.
type target struct {
	// kind is the notifier kind, the provider label of the metrics.
	kind string
	// name says where the notifier comes from, for logs.
	name string
	// threshold is the least severe message the target receives.
	threshold Severity
	notifier  Interface
}

// job is one message for one target.
type job struct {
	t target
	m Message
}

// Dispatcher delivers messages in the background: Post only queues them,
// so a slow or unreachable chat service never delays the caller. Each
// delivery is retried with exponential backoff. It implements Interface
// and manager.Runnable.
type Dispatcher struct {
	opts    Options
	global  []target
	queue   chan job
	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec
	workers sync.WaitGroup
	// abort cancels the attempts in flight when draining runs out of time.
	abort  context.CancelFunc
	base   context.Context //nolint:containedctx // the lifetime of the workers, cancelled by Close
	mu     sync.RWMutex
	closed bool
}

// NewDispatcher builds the global notifier from opts.Global, registers the
// metrics and starts the workers. Call Close (or add the Dispatcher to the
// manager) to drain the queue.
func NewDispatcher(opts Options) (*Dispatcher, error) {
	opts = withDefaults(opts)
	d := &Dispatcher{opts: opts, queue: make(chan job, opts.QueueSize)}
	kind, cfg, ok, err := opts.Global.config()
	if err != nil {
		return nil, err
	}
	if ok {
		cfg.ClusterName, cfg.HTTPClient = opts.ClusterName, opts.HTTPClient
		n, err := New(kind, cfg)
		if err != nil {
			return nil, fmt.Errorf("building the global notifier: %w", err)
		}
		d.global = []target{{kind: kind, name: "the -" + kind + " flags", notifier: n}}
	}
	if d.sent, err = counterVec(opts.Registerer, "sluice_notifications_sent_total",
		"Notifications delivered, by notifier kind."); err != nil {
		return nil, err
	}
	if d.failed, err = counterVec(opts.Registerer, "sluice_notification_failures_total",
		"Notifications given up on after the last attempt or dropped, by notifier kind."); err != nil {
		return nil, err
	}
	d.base, d.abort = context.WithCancel(context.Background())
	for range opts.Workers {
		d.workers.Go(d.work)
	}
	return d, nil
}

func withDefaults(o Options) Options {
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	return o
}

// counterVec registers a counter with the label provider, or reuses the
// one already registered under that name.
func counterVec(reg prometheus.Registerer, name, help string) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"provider"})
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("registering %s: %w", name, err)
	}
	return c, nil
}

// Post queues the message for the providers of its Canary, read with
// Options.Reader; a Canary that no longer exists gets the global notifier.
// It returns at once; an error means the providers could not be resolved
// (the others still receive the message) or the queue was full.
func (d *Dispatcher) Post(ctx context.Context, m Message) error {
	if d.opts.Reader == nil {
		return d.enqueue(m, d.global)
	}
	cd, err := d.canary(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.Canary})
	if err != nil {
		return err
	}
	if cd == nil {
		return d.enqueue(m, d.global)
	}
	n, err := d.ForCanary(ctx, cd)
	return errors.Join(err, n.Post(ctx, m))
}

// enqueue queues the message for each target whose threshold it meets.
func (d *Dispatcher) enqueue(m Message, targets []target) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	var errs []error
	for _, t := range targets {
		if !Receives(t.threshold, m.Severity) {
			continue
		}
		select {
		case d.queue <- job{t: t, m: m}:
		default:
			d.failed.WithLabelValues(t.kind).Inc()
			d.opts.Logger.Error(ErrQueueFull, "Dropping a notification", "canary", m.Namespace+"/"+m.Canary, "provider", t.name)
			errs = append(errs, fmt.Errorf("notifying %s: %w", t.name, ErrQueueFull))
		}
	}
	return errors.Join(errs...)
}

// work delivers queued messages until the queue is closed.
func (d *Dispatcher) work() {
	for j := range d.queue {
		d.deliver(j)
	}
}

// deliver tries a message until it is accepted, fails for good, runs out
// of attempts, or the Dispatcher is aborted.
func (d *Dispatcher) deliver(j job) {
	log := d.opts.Logger.WithValues("canary", j.m.Namespace+"/"+j.m.Canary, "provider", j.t.name)
	for attempt := 1; ; attempt++ {
		err := d.base.Err()
		if err == nil {
			ctx, cancel := context.WithTimeout(d.base, d.opts.Timeout)
			err = j.t.notifier.Post(ctx, j.m)
			cancel()
		}
		if err == nil {
			d.sent.WithLabelValues(j.t.kind).Inc()
			return
		}
		if attempt >= d.opts.MaxAttempts || !retryable(err) || d.base.Err() != nil {
			d.failed.WithLabelValues(j.t.kind).Inc()
			log.Error(err, "Delivering a notification failed", "attempts", attempt, "text", j.m.Text)
			return
		}
		wait := d.delay(attempt, err)
		log.V(1).Info("Delivering a notification failed; retrying", "attempt", attempt, "retryIn", wait.String(), "error", err.Error())
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-d.base.Done():
			timer.Stop()
		}
	}
}

// delay is the wait after a failed attempt: Backoff doubled per earlier
// failure, at least what the service asked for, at most maxDelay.
func (d *Dispatcher) delay(attempt int, err error) time.Duration {
	wait := d.opts.Backoff
	for i := 1; i < attempt && wait < maxDelay; i++ {
		wait *= 2
	}
	return min(max(wait, retryAfter(err)), maxDelay)
}

// Close stops accepting messages and waits until the queued ones are
// delivered or ctx ends; then it cancels the attempts in flight and drops
// the rest, counting them as failures.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.queue)
	}
	d.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		d.workers.Wait()
		close(drained)
	}()
	select {
	case <-drained:
		d.abort()
		return nil
	case <-ctx.Done():
		d.abort()
		<-drained
		return fmt.Errorf("draining the notification queue: %w", ctx.Err())
	}
}

// Start waits until ctx ends, then drains the queue for at most
// Options.DrainTimeout. The workers run from NewDispatcher on; Start only
// lets the manager stop them.
func (d *Dispatcher) Start(ctx context.Context) error {
	<-ctx.Done()
	drainCtx, cancel := context.WithTimeout(context.Background(), d.opts.DrainTimeout)
	defer cancel()
	return d.Close(drainCtx)
}

// NeedLeaderElection is false: every replica drains its own queue.
func (d *Dispatcher) NeedLeaderElection() bool { return false }
