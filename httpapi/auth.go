package httpapi

import (
	"context"
	"net/http"
	"strings"

	"messageapi"
	"messageapi/auth"
)

// identityKey and authFailureKey hold the outcome of a request's token
// in its context.
type (
	identityKey    struct{}
	authFailureKey struct{}
)

// identityFrom returns the identity of the request's verified token, if
// it carried one.
func identityFrom(ctx context.Context) (auth.Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(auth.Identity)
	return id, ok
}

// actingUser returns the user a request acts for, given the user id the
// request names ("" when it names none). Without a verified token (auth
// off, or a public read without one) that is given, unchanged. A server
// token acts for any user it names. A user token acts as its subject:
// an omitted user id is the subject, and any other is refused with
// permission_denied. Handlers call it before the command, so a refused
// request changes nothing.
func actingUser(r *http.Request, given string) (string, error) {
	id, ok := identityFrom(r.Context())
	switch {
	case !ok || id.Server:
		return given, nil
	case given == "" || given == id.Subject:
		return id.Subject, nil
	}
	// The message does not repeat the subject: nothing of a token is
	// echoed to the client.
	return "", messageapi.Errorf(messageapi.EPERMISSION, "a user token acts only as its own user (its sub): leave user_id out or name that user")
}

// actsForAnyUser reports whether the request carries a server's token,
// which may change what any user wrote.
func actsForAnyUser(r *http.Request) bool {
	id, ok := identityFrom(r.Context())
	return ok && id.Server
}

// isWrite reports whether a request method changes something. OPTIONS
// and HEAD follow GET.
func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// authenticate verifies the bearer token of a request that carries one
// and records the outcome in the context: the identity, or why the token
// was refused. It does not answer: requireToken does, after the rate
// limiter has counted the request, by user for a good token and by
// address for a bad one, so guessing tokens is throttled too.
func authenticate(v *auth.Verifier) func(http.Handler) http.Handler {
	if v == nil {
		return passThrough
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			values := r.Header.Values("Authorization")
			if len(values) == 0 {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, verified(r, v, values))
		})
	}
}

// verified returns r carrying the outcome of verifying the Authorization
// values: the identity, or why it was refused.
func verified(r *http.Request, v *auth.Verifier, values []string) *http.Request {
	ctx := r.Context()
	if id, failure := v.Verify(values); failure != nil {
		ctx = context.WithValue(ctx, authFailureKey{}, failure)
	} else {
		ctx = context.WithValue(ctx, identityKey{}, id)
	}
	return r.WithContext(ctx)
}

// requireToken answers 401 for a request whose token was refused, and
// for one without a token that needs one: every write, and reads when
// reads is set.
func requireToken(v *auth.Verifier, reads bool) func(http.Handler) http.Handler {
	if v == nil {
		return passThrough
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			failure, _ := r.Context().Value(authFailureKey{}).(*auth.Error)
			if _, ok := identityFrom(r.Context()); !ok && failure == nil && (reads || isWrite(r.Method)) {
				failure = auth.ErrNoToken
			}
			if failure == nil {
				next.ServeHTTP(w, r)
				return
			}
			ctx := r.Context()
			requestLogger(ctx).DebugContext(ctx, "request unauthenticated", "reason", failure.Description, "err", failure.Cause)
			w.Header().Set("WWW-Authenticate", failure.Challenge())
			writeError(w, r, &messageapi.Error{Code: messageapi.EUNAUTHENTICATED, Message: failure.Description})
		})
	}
}

// passThrough is the middleware of a feature that is off.
func passThrough(next http.Handler) http.Handler { return next }

// queryToken lets a client that cannot set headers (a browser's
// EventSource) give its token as access_token. A token in the header
// wins; the access log records paths without their query.
func queryToken(v *auth.Verifier) func(http.Handler) http.Handler {
	if v == nil {
		return passThrough
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := r.URL.Query().Get("access_token")
			if token == "" || len(r.Header.Values("Authorization")) > 0 {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, verified(r, v, []string{"Bearer " + strings.TrimSpace(token)}))
		})
	}
}
