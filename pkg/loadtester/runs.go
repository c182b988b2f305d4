package loadtester

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

var (
	// errAlreadyRunning says the same command already runs for the canary.
	errAlreadyRunning = errors.New("already running")
	// errClosed says the server is shutting down.
	errClosed = errors.New("the load tester is shutting down")
	// errTooMany says the cap on running commands is reached.
	errTooMany = errors.New("too many commands are running")
)

// runs tracks the commands in progress so that a command is not started
// twice for a canary and Close can stop them all and wait for them.
type runs struct {
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
	seq     int
	closed  bool
	wg      sync.WaitGroup
	onCount func(n int)
	// max caps the runs in progress.
	max int
}

func newRuns(maxRuns int, onCount func(n int)) *runs {
	return &runs{cancels: map[string]context.CancelFunc{}, onCount: onCount, max: maxRuns}
}

// begin registers a run under key ("" for a run that may overlap others)
// and returns its context, bounded by timeout and ended by Close, and the
// function to call when it is done. It fails with errAlreadyRunning when
// key runs, with errTooMany when max runs are in progress.
func (rs *runs) begin(parent context.Context, key string, timeout time.Duration) (context.Context, func(), error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return nil, nil, errClosed
	}
	if key == "" {
		rs.seq++
		key = "\x00" + strconv.Itoa(rs.seq)
	}
	if _, ok := rs.cancels[key]; ok {
		return nil, nil, errAlreadyRunning
	}
	if len(rs.cancels) >= rs.max {
		return nil, nil, fmt.Errorf("%w: %d of at most %d (-max-jobs); try again when one ends", errTooMany, len(rs.cancels), rs.max)
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	rs.cancels[key] = cancel
	rs.wg.Add(1)
	rs.onCount(len(rs.cancels))
	end := func() {
		cancel()
		rs.mu.Lock()
		delete(rs.cancels, key)
		rs.onCount(len(rs.cancels))
		rs.mu.Unlock()
		rs.wg.Done()
	}
	return ctx, end, nil
}

// goRun runs fn in the background under key, unless a run with the same key
// is in progress.
func (rs *runs) goRun(key string, timeout time.Duration, fn func(ctx context.Context)) error {
	ctx, end, err := rs.begin(context.Background(), key, timeout)
	if err != nil {
		return err
	}
	go func() {
		defer end()
		fn(ctx)
	}()
	return nil
}

// running is the number of runs in progress.
func (rs *runs) running() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.cancels)
}

// close stops every run, refuses new ones and waits for the runs to return.
func (rs *runs) close() {
	rs.mu.Lock()
	rs.closed = true
	for _, cancel := range rs.cancels {
		cancel()
	}
	rs.mu.Unlock()
	rs.wg.Wait()
}
