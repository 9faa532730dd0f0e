package limits

import (
	"net/http"
	"time"

	"github.com/go-chi/httprate"
)

// Rate allows each client limit requests per window, counted in memory by
// this process. key names a request's client; refuse answers the requests
// beyond the limit, after the limiter has set Retry-After. Every answer
// where the limit applies carries X-RateLimit-Limit, X-RateLimit-Remaining
// and X-RateLimit-Reset. A limit of 0 turns it off.
func Rate(limit int, window time.Duration, key func(*http.Request) string, refuse http.HandlerFunc) func(http.Handler) http.Handler {
	if limit == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	return httprate.LimitBy(limit, window,
		func(r *http.Request) (string, error) { return key(r), nil },
		httprate.WithLimitHandler(refuse))
}

// ClientIP is the canonical form of a client address as a rate-limit key:
// an IPv6 client counts by its /64, as one host usually holds all of it.
func ClientIP(addr string) string { return httprate.CanonicalizeIP(addr) }
