package postgrestest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// QueryLog records the queries a pool runs (as its pgx tracer), for the
// plan guards: the tests that run each of them again under EXPLAIN
// ANALYZE and bound the rows it reads.
type QueryLog struct {
	mu      sync.Mutex
	queries []LoggedQuery
}

// LoggedQuery is one query a QueryLog recorded.
type LoggedQuery struct {
	SQL  string
	Args []any
}

func (l *QueryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, LoggedQuery{SQL: d.SQL, Args: d.Args})
	return ctx
}

func (l *QueryLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// The queries of a batch are recorded one by one, like the others.
func (l *QueryLog) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (l *QueryLog) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, LoggedQuery{SQL: d.SQL, Args: d.Args})
}

func (l *QueryLog) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// Take returns the queries logged since the last Take.
func (l *QueryLog) Take() []LoggedQuery {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queries
	l.queries = nil
	return q
}

// planNode is the part of a node of EXPLAIN (ANALYZE, FORMAT JSON) that
// says how many rows it read.
type planNode struct {
	NodeType       string     `json:"Node Type"`
	Relation       string     `json:"Relation Name"`
	Index          string     `json:"Index Name"`
	ActualRows     float64    `json:"Actual Rows"`
	ActualLoops    float64    `json:"Actual Loops"`
	RemovedFilter  float64    `json:"Rows Removed by Filter"`
	RemovedRecheck float64    `json:"Rows Removed by Index Recheck"`
	Plans          []planNode `json:"Plans"`
}

// rowsRead sums, over the scans of a plan, the rows each read from a table
// or an index: those it returned and those its filters threw away, over
// all its loops. A bitmap heap scan counts the rows its index scan found,
// so that index scan is not counted again.
func rowsRead(n planNode, scans *[]string) float64 {
	var read float64
	switch n.NodeType {
	case "Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan":
		read = (n.ActualRows + n.RemovedFilter + n.RemovedRecheck) * n.ActualLoops
		*scans = append(*scans, fmt.Sprintf("%s on %s %s: %.0f", n.NodeType, n.Relation, n.Index, read))
	}
	for _, c := range n.Plans {
		if n.NodeType == "Bitmap Heap Scan" && c.NodeType == "Bitmap Index Scan" {
			continue
		}
		read += rowsRead(c, scans)
	}
	return read
}

// RowsRead runs q under EXPLAIN ANALYZE on conn and returns the rows it
// read (rowsRead) and its scans, for a failure message.
func RowsRead(t testing.TB, conn *pgx.Conn, q LoggedQuery) (float64, []string) {
	t.Helper()
	var out []byte
	if err := conn.QueryRow(context.Background(), "explain (analyze, format json) "+q.SQL, q.Args...).Scan(&out); err != nil {
		t.Fatalf("explain %s: %v", q.SQL, err)
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain %s: %v (%s)", q.SQL, err, out)
	}
	var scans []string
	return rowsRead(plans[0].Plan, &scans), scans
}
