package limits

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConnLimits bound the client connections of one server, so that one
// client, or a flood of idle keep-alive connections, cannot take the file
// descriptors the process needs for its own pools, nor every slot.
type ConnLimits struct {
	// Max is the most connections held at once. When it is reached, a new
	// connection replaces the connection idle the longest; when none is
	// idle, it is refused with 503.
	Max int
	// PerClient is the most connections one address holds; one more is
	// refused with 429. Addresses in Exempt (trusted proxies, which carry
	// many clients) are not limited per address.
	PerClient int
	Exempt    []netip.Prefix
}

// DescriptorLimit returns the process's limit on open files.
func DescriptorLimit() (int, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("read the open-file limit: %w", err)
	}
	return int(min(l.Cur, 1<<30)), nil
}

// connLimiter admits connections within ConnLimits and tracks which are
// idle, through the server's ConnState hook.
type connLimiter struct {
	limits ConnLimits

	mu     sync.Mutex
	total  int
	byAddr map[netip.Addr]int
	idle   map[*limitedConn]time.Time

	open    prometheus.GaugeFunc
	refused *prometheus.CounterVec
	evicted prometheus.Counter
}

// LimitConns wraps ln so that it admits connections within limits, and
// installs on srv the hook that tells it which connections are idle. Its
// metrics go to reg.
func LimitConns(ln net.Listener, srv *http.Server, limits ConnLimits, reg prometheus.Registerer) (net.Listener, error) {
	l := &connLimiter{limits: limits, byAddr: map[netip.Addr]int{}, idle: map[*limitedConn]time.Time{}}
	l.open = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "messageapi_http_connections",
		Help: "Client connections held open.",
	}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(l.total)
	})
	l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messageapi_http_connections_refused_total",
		Help: "Client connections answered and closed at once, by reason: per_client (429), full (503), version (505).",
	}, []string{"reason"})
	l.evicted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "messageapi_http_connections_evicted_total",
		Help: "Idle keep-alive connections closed to make room for a new one.",
	})
	for _, c := range []prometheus.Collector{l.open, l.refused, l.evicted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		l.track(c, s)
		if next != nil {
			next(c, s)
		}
	}
	return &limitedListener{Listener: ln, limiter: l}, nil
}

type limitedListener struct {
	net.Listener
	limiter *connLimiter
}

// Accept returns the next admitted connection. Refused ones are answered
// and closed in the background, so a flood cannot slow accepting.
func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc, refusal := ln.limiter.admit(c); lc != nil {
			return lc, nil
		} else {
			go refuse(c, refusal)
		}
	}
}

func (l *connLimiter) admit(c net.Conn) (*limitedConn, refusal) {
	addr := peerAddr(c)
	exempt := false
	for _, p := range l.limits.Exempt {
		if p.Contains(addr) {
			exempt = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !exempt && l.limits.PerClient > 0 && l.byAddr[addr] >= l.limits.PerClient {
		l.refused.WithLabelValues("per_client").Inc()
		return nil, tooManyFromClient
	}
	if l.limits.Max > 0 && l.total >= l.limits.Max {
		if !l.evictIdleLocked() {
			l.refused.WithLabelValues("full").Inc()
			return nil, serverFull
		}
	}
	l.total++
	l.byAddr[addr]++
	return &limitedConn{Conn: c, limiter: l, addr: addr}, 0
}

// evictIdleLocked closes the connection idle the longest, if any. Its
// count is given back at once; Close of an idle keep-alive connection is
// what a client expects to happen to it at any time.
func (l *connLimiter) evictIdleLocked() bool {
	var oldest *limitedConn
	var since time.Time
	for c, t := range l.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	if oldest == nil {
		return false
	}
	delete(l.idle, oldest)
	l.releaseLocked(oldest)
	l.evicted.Inc()
	go oldest.Conn.Close()
	return true
}

func (l *connLimiter) releaseLocked(c *limitedConn) {
	if c.released {
		return
	}
	c.released = true
	l.total--
	if l.byAddr[c.addr]--; l.byAddr[c.addr] <= 0 {
		delete(l.byAddr, c.addr)
	}
}

func (l *connLimiter) track(nc net.Conn, s http.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateIdle:
		l.idle[c] = time.Now()
	case http.StateActive:
		delete(l.idle, c)
	case http.StateClosed, http.StateHijacked:
		delete(l.idle, c)
		l.releaseLocked(c)
	}
}

// limitedConn is an admitted connection; closing it gives its slot back.
type limitedConn struct {
	net.Conn
	limiter  *connLimiter
	addr     netip.Addr
	released bool // guarded by limiter.mu
	read     bool // whether the first bytes were read (only the server's goroutine reads)
}

func (c *limitedConn) Close() error {
	c.limiter.mu.Lock()
	delete(c.limiter.idle, c)
	c.limiter.releaseLocked(c)
	c.limiter.mu.Unlock()
	return c.Conn.Close()
}

// errUnsupportedVersion ends a connection whose request line names an HTTP
// version other than 1.x, after it was answered in JSON.
var errUnsupportedVersion = errors.New("unsupported HTTP version")

// Read looks at the first request line: a version other than HTTP/1.x
// (a stray HTTP/2 preface, a typo) would get net/http's plain-text 505;
// it gets the API's JSON error body instead. Later reads pass through.
func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.read || n == 0 {
		return n, err
	}
	c.read = true
	line, _, complete := bytes.Cut(p[:n], []byte("\r\n"))
	if complete {
		if i := bytes.LastIndexByte(line, ' '); i >= 0 {
			v := line[i+1:]
			if bytes.HasPrefix(v, []byte("HTTP/")) && !bytes.Equal(v, []byte("HTTP/1.1")) && !bytes.Equal(v, []byte("HTTP/1.0")) {
				c.limiter.refused.WithLabelValues("version").Inc()
				writeRefusal(c.Conn, unsupportedVersion)
				return 0, errUnsupportedVersion
			}
		}
	}
	return n, err
}

// refusal is why a connection is answered and closed without a request.
type refusal int

const (
	tooManyFromClient refusal = iota + 1
	serverFull
	unsupportedVersion
)

func refuse(c net.Conn, r refusal) {
	writeRefusal(c, r)
	_ = c.Close()
}

// writeRefusal writes a complete HTTP response in the API's error format.
func writeRefusal(c net.Conn, r refusal) {
	status, code, msg := 429, "rate_limited", "too many connections from this address; reuse one, or retry after the time in Retry-After"
	switch r {
	case serverFull:
		status, code, msg = 503, "unavailable", "the server holds as many connections as it can; retry after the time in Retry-After"
	case unsupportedVersion:
		status, code, msg = 505, "http_version_not_supported", "this server speaks HTTP/1.1 (and HTTP/1.0)"
	}
	body := fmt.Sprintf(`{"error":%q,"code":%q}`+"\n", msg, code)
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

// peerAddr returns the address of the other end, without a port, with
// IPv4 in IPv6 unmapped so both spellings of one client count together.
func peerAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
