package limits

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// limitedServer serves 200 "ok" within limits on a free port of 127.0.0.1.
func limitedServer(t *testing.T, limits ConnLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })}
	limited, err := LimitConns(ln, srv, limits, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(limited) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// dialFrom connects to addr from the local address from (127.x.y.z).
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip sends one keep-alive request on c and returns the status line
// of the answer and its body.
func roundTrip(t *testing.T, c net.Conn, requestLine string) (status, body string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\nHost: x\r\n\r\n", requestLine); err != nil {
		return "write: " + err.Error(), ""
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "read: " + err.Error(), ""
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp.Status, b.String()
}

func TestConnectionsPerClientAreCapped(t *testing.T) {
	t.Parallel()
	addr := limitedServer(t, ConnLimits{PerClient: 3})
	for range 3 {
		if status, _ := roundTrip(t, dialFrom(t, "127.0.0.1", addr), "GET / HTTP/1.1"); status != "200 OK" {
			t.Fatalf("a connection within the limit got %s", status)
		}
	}
	status, body := roundTrip(t, dialFrom(t, "127.0.0.1", addr), "GET / HTTP/1.1")
	if status != "429 Too Many Requests" || !strings.Contains(body, `"code":"rate_limited"`) {
		t.Errorf("a fourth connection from one address got %s %s, want 429 rate_limited", status, body)
	}
	if status, _ := roundTrip(t, dialFrom(t, "127.0.0.2", addr), "GET / HTTP/1.1"); status != "200 OK" {
		t.Errorf("another address got %s, want 200", status)
	}
}

func TestIdleConnectionsMakeRoom(t *testing.T) {
	t.Parallel()
	addr := limitedServer(t, ConnLimits{Max: 2})
	a, b := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	for _, c := range []net.Conn{a, b} {
		if status, _ := roundTrip(t, c, "GET / HTTP/1.1"); status != "200 OK" {
			t.Fatalf("got %s", status)
		}
		// The server marks a connection idle just after its answer: leave
		// a margin, so that a is idle the longest on a loaded machine too.
		time.Sleep(50 * time.Millisecond)
	}
	// Both are idle keep-alive connections now: a third takes the place of
	// the one idle the longest, a.
	if status, _ := roundTrip(t, dialFrom(t, "127.0.0.1", addr), "GET / HTTP/1.1"); status != "200 OK" {
		t.Fatalf("a third connection got %s, want 200 in place of an idle one", status)
	}
	if status, _ := roundTrip(t, a, "GET / HTTP/1.1"); status == "200 OK" {
		t.Error("the evicted idle connection still served a request")
	}
}

func TestAFullServerRefusesWhenNothingIsIdle(t *testing.T) {
	t.Parallel()
	addr := limitedServer(t, ConnLimits{Max: 1})
	dialFrom(t, "127.0.0.1", addr) // connected, no request yet: not idle; accepted first
	status, body := roundTrip(t, dialFrom(t, "127.0.0.1", addr), "GET / HTTP/1.1")
	if status != "503 Service Unavailable" || !strings.Contains(body, `"code":"unavailable"`) {
		t.Fatalf("a connection past the limit got %s %s, want 503 unavailable", status, body)
	}
}

func TestOtherHTTPVersionsGetAJSONError(t *testing.T) {
	t.Parallel()
	addr := limitedServer(t, ConnLimits{})
	for _, line := range []string{"GET / HTTP/2.0", "GET / HTTP/3", "PRI * HTTP/2.0"} {
		status, body := roundTrip(t, dialFrom(t, "127.0.0.1", addr), line)
		if status != "505 HTTP Version Not Supported" || !strings.Contains(body, `"code":"http_version_not_supported"`) {
			t.Errorf("%q got %s %s, want a JSON 505", line, status, body)
		}
	}
	if status, _ := roundTrip(t, dialFrom(t, "127.0.0.1", addr), "GET / HTTP/1.0"); status != "200 OK" {
		t.Errorf("HTTP/1.0 got %s", status)
	}
}
