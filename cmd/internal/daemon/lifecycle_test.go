package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder notes the order in which components stop.
type recorder struct {
	mu      sync.Mutex
	stopped []string
}

func (r *recorder) component(name string) Component {
	return Background(name, func(ctx context.Context) {
		<-ctx.Done()
		r.mu.Lock()
		r.stopped = append(r.stopped, name)
		r.mu.Unlock()
	})
}

func TestRunComponentsStopsInReverseOrder(t *testing.T) {
	t.Parallel()
	var r recorder
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	finished := Component{Name: "migrate", Run: func(context.Context) error { return nil }} // a job that ends early
	go func() {
		errc <- RunComponents(ctx, []Component{r.component("writes"), r.component("publisher"), finished, r.component("server")})
	}()
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	if len(r.stopped) != 0 {
		t.Errorf("components stopped before the program did: %v (a job that finished stops nothing)", r.stopped)
	}
	r.mu.Unlock()
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if want := []string{"server", "publisher", "writes"}; !slices.Equal(r.stopped, want) {
		t.Errorf("stopped in the order %v, want %v", r.stopped, want)
	}
}

func TestRunComponentsStopsAllWhenOneFails(t *testing.T) {
	t.Parallel()
	var r recorder
	boom := errors.New("boom")
	failing := Component{Name: "server", Run: func(context.Context) error { return boom }}
	err := RunComponents(context.Background(), []Component{r.component("writes"), failing, r.component("hub")})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "server") {
		t.Errorf("RunComponents = %v, want the failure named after its component", err)
	}
	if want := []string{"hub", "writes"}; !slices.Equal(r.stopped, want) {
		t.Errorf("stopped %v, want %v", r.stopped, want)
	}
}
