package projection

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"messageapi"
)

// TestUnreadEntriesAbsentWhenUnknown: when Redis cannot tell how many
// entries a partition's group has not read (Unread -1), the partition
// has no messageapi_projection_unread_entries series, rather than a -1
// that sums, averages and compares as if it were a count; the series
// returns with the next known value. Pending is always known.
func TestUnreadEntriesAbsentWhenUnknown(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.backlog("0", messageapi.StreamBacklog{Pending: 2, Unread: 5})
	m.backlog("1", messageapi.StreamBacklog{Pending: 1, Unread: 7})
	m.backlog("1", messageapi.StreamBacklog{Pending: 3, Unread: -1})
	want := `
# HELP messageapi_projection_unread_entries Stream entries the consumer group has not read yet, by partition; no series for a partition while Redis cannot tell.
# TYPE messageapi_projection_unread_entries gauge
messageapi_projection_unread_entries{partition="0"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "messageapi_projection_unread_entries"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.pending.WithLabelValues("1")); got != 3 {
		t.Errorf("pending of partition 1 = %v, want 3", got)
	}
	m.backlog("1", messageapi.StreamBacklog{Pending: 0, Unread: 0})
	if got := testutil.ToFloat64(m.unread.WithLabelValues("1")); got != 0 {
		t.Errorf("unread of partition 1, known again = %v, want 0", got)
	}
}
