package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/cors"
	"github.com/prometheus/client_golang/prometheus"

	"messageapi"
	"messageapi/limits"
)

type loggerKey struct{}

// requestLogger returns the request's logger, which carries its id.
func requestLogger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// validRequestID accepts an incoming X-Request-ID only when it is short and
// plain, so a client cannot inject into logs.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// withRequestID honours a plain incoming X-Request-ID or makes one, echoes
// it in the response and puts a logger carrying it in the context.
func withRequestID(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("X-Request-ID")
			if !validRequestID(id) {
				b := make([]byte, 12)
				_, _ = rand.Read(b)
				id = hex.EncodeToString(b)
			}
			w.Header().Set("X-Request-ID", id)
			ctx := context.WithValue(r.Context(), loggerKey{}, log.With("request_id", id))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// Metrics are the RED metrics of the API, per route pattern (not per
// path, so ids do not explode the label space).
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "messageapi_http_request_duration_seconds",
			Help:    "HTTP request latency, by method, route pattern and status code; event streams (which last as long as their client) are not observed.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messageapi_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

// observe records metrics and writes the access-log line of each request.
// It runs around the router, so the route pattern is known afterwards.
func observe(m *Metrics, accessLevel slog.Level) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			m.inFlight.Inc()
			defer m.inFlight.Dec()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			elapsed := time.Since(start)
			route := routeOf(r)
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			code := strconv.Itoa(status)
			method := metricMethod(r.Method)
			m.requests.WithLabelValues(method, route, code).Inc()
			if !isEventStream(ww) { // a stream lasts as long as its client: no latency
				m.duration.WithLabelValues(method, route, code).Observe(elapsed.Seconds())
			}
			requestLogger(r.Context()).Log(r.Context(), accessLevel, "request",
				"method", r.Method, "route", route, "path", r.URL.Path, "status", status,
				"bytes", ww.BytesWritten(), "duration_ms", float64(elapsed.Microseconds())/1000,
				"client", middleware.GetClientIP(r.Context()))
		})
	}
}

// isEventStream tells an answer that was a stream of Server-Sent Events
// from an ordinary one (a refused /events request included).
func isEventStream(w http.ResponseWriter) bool {
	return strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream")
}

// routeOf is the pattern of the route a request was for, also when
// middleware answered it before routing (401, 429, 503); "unmatched" for
// a path no route has.
func routeOf(r *http.Request) string {
	rc := chi.RouteContext(r.Context())
	if rc == nil {
		return "unmatched"
	}
	pattern := rc.RoutePattern()
	if pattern == "" && rc.Routes != nil {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		pattern = rc.Routes.Find(chi.NewRouteContext(), method, r.URL.Path)
	}
	if pattern == "" {
		return "unmatched"
	}
	return pattern
}

// metricMethod names standard methods and folds any other into "other",
// so a client cannot create metric series at will.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// recoverPanics turns a panic in a handler into a logged 500, so one bad
// request cannot take the process down.
func recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				requestLogger(r.Context()).ErrorContext(r.Context(), "panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				writeError(w, r, fmt.Errorf("panic: %v", p))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// requireReady answers 503 until the schema is migrated, so a process that
// started while PostgreSQL was down fails fast and clearly meanwhile.
func requireReady(ready func() bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !ready() {
				writeError(w, r, messageapi.Unavailable("service", fmt.Errorf("schema not migrated yet")))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// withTimeout gives every request a deadline, so no request holds a
// connection or a goroutine longer than that.
func withTimeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// clientIP records the client's address in the context: the TCP peer, or,
// when the peer is a trusted proxy, the address X-Forwarded-For names.
func clientIP(trusted []netip.Prefix) func(http.Handler) http.Handler {
	if len(trusted) == 0 {
		return middleware.ClientIPFromRemoteAddr
	}
	prefixes := make([]string, len(trusted))
	for i, p := range trusted {
		prefixes[i] = p.String()
	}
	return middleware.ClientIPFromXFF(prefixes...)
}

// rateLimit allows each client limit requests per window and answers the
// rest 429 with Retry-After. A client is the user of a verified token,
// wherever it connects from, and otherwise the client address. A limit of
// 0 turns it off, as load tests need.
func rateLimit(limit int, window time.Duration) func(http.Handler) http.Handler {
	return limits.Rate(limit, window,
		func(r *http.Request) string {
			if id, ok := identityFrom(r.Context()); ok {
				return "sub:" + id.Subject
			}
			return "ip:" + limits.ClientIP(middleware.GetClientIP(r.Context()))
		},
		func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, messageapi.Errorf(messageapi.ERATELIMITED, "too many requests; retry after the time in Retry-After"))
		})
}

// allowOrigins lets browser clients on origins call the API (CORS): it
// answers their preflight requests itself, before any token is asked
// for and before the rate limiter, so a preflight neither counts against
// a client nor is refused when the client is limited; and it names the
// headers a script may send and read. It runs before the rate limiter
// and the token check and sets its headers before passing a request on,
// so every answer to an allowed origin carries them, a 429 or a 401 as
// much as a 201, and a script can read it. Tokens travel in
// Authorization, not in cookies, so no credentials are allowed. No
// origins: no CORS headers.
func allowOrigins(origins []string) func(http.Handler) http.Handler {
	if len(origins) == 0 {
		return passThrough
	}
	return cors.Handler(cors.Options{
		AllowedOrigins: origins,
		// Every method the router serves; OPTIONS is always allowed.
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodDelete},
		AllowedHeaders: []string{"Authorization", "Content-Type", "X-Request-ID", "If-None-Match"},
		ExposedHeaders: []string{"Location", "ETag", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining",
			"X-RateLimit-Reset", "X-Request-ID", "WWW-Authenticate"},
		MaxAge: 600,
	})
}
