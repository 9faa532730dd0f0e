package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"messageapi"
	"messageapi/redis"
	"messageapi/redis/redistest"
	"messageapi/redis/stream"
)

func TestPublisherAppendsInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	c, err := redis.Open(redis.Config{URL: redistest.URL(), Prefix: redistest.NewPrefix(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := stream.New(c, stream.Config{Partitions: 1})
	p := stream.NewPublisher(s, redis.QueueConfig{Queue: 1000, Batch: 64})
	for i := range 500 {
		e := messageapi.ReactionChanged{ReactionID: uuid.NewString(), MessageID: uuid.NewString(), Version: int64(i + 1), ChangedAt: time.Now()}
		if err := p.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Stopping drains the queue.
	runCtx, stop := context.WithCancel(ctx)
	stop()
	p.Run(runCtx, 5*time.Second)
	if n, err := c.Redis().XLen(ctx, s.Key(0)).Result(); err != nil || n != 500 {
		t.Fatalf("stream holds %d entries (%v), want 500", n, err)
	}
	if got := counterSum(t, reg, "messageapi_stream_appends_total"); got != 500 {
		t.Errorf("appends counted = %v, want 500", got)
	}

	// A full queue refuses at once rather than block the write.
	full := stream.NewPublisher(s, redis.QueueConfig{Queue: 1})
	e := messageapi.ReactionChanged{ReactionID: uuid.NewString(), MessageID: uuid.NewString(), Version: 1, ChangedAt: time.Now()}
	if err := full.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := full.Publish(ctx, e); messageapi.ErrorCode(err) != messageapi.EUNAVAILABLE {
		t.Errorf("publish to a full queue = %v, want unavailable", err)
	}
}

// counterSum returns the sum of a counter family over its labels.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			var sum float64
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
