package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Component is one piece of a program's background work: it runs until
// its context is done, then returns. It may also return early: nil for a
// job that is finished (a migration), an error to stop the program.
type Component struct {
	Name string
	Run  func(ctx context.Context) error
}

// Background makes a Component of work that cannot fail.
func Background(name string, run func(ctx context.Context)) Component {
	return Component{Name: name, Run: func(ctx context.Context) error { run(ctx); return nil }}
}

// RunComponents runs every component at once, in one list per program so
// that none is left out. When ctx is done, or a component fails, it stops
// them in reverse order (a failure while stopping counts too): a component's context is cancelled only once
// every component after it has returned. So list what others depend on
// first: the write committers before the servers whose requests use
// them. It returns the first failure, named after its component.
func RunComponents(ctx context.Context, components []Component) error {
	n := len(components)
	cancels := make([]context.CancelFunc, n)
	done := make([]chan struct{}, n)
	failed := make(chan struct{})
	var once sync.Once
	var first error
	for i, c := range components {
		var cctx context.Context
		cctx, cancels[i] = context.WithCancel(context.WithoutCancel(ctx))
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			if err := c.Run(cctx); err != nil && !errors.Is(err, context.Canceled) {
				once.Do(func() { first = fmt.Errorf("%s: %w", c.Name, err); close(failed) })
			}
		}()
	}
	select {
	case <-ctx.Done():
	case <-failed:
	}
	for i := n - 1; i >= 0; i-- {
		cancels[i]()
		<-done[i]
	}
	return first
}
