package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"messageapi"
)

// authConfig is how the API authenticates requests. With neither a
// secret nor keys it is off: the API is open, as in development.
type authConfig struct {
	secret   []byte            // HS256 shared secret
	keys     []verificationKey // public keys from a JWKS file
	audience string            // required aud, when set
	issuer   string            // required iss, when set
	leeway   time.Duration     // clock skew allowed on exp and nbf
	reads    bool              // reads need a token too
}

func (c authConfig) enabled() bool { return len(c.secret) > 0 || len(c.keys) > 0 }

// minSecretBytes is the shortest HS256 secret accepted: RFC 7518 §3.2
// asks for a key at least as long as the hash, 256 bits.
const minSecretBytes = 32

// roleServer is the value of the "role" claim that makes a server token.
const roleServer = "server"

// identity is who a verified token speaks for.
type identity struct {
	subject string // the token's sub, a valid user id
	server  bool   // a server token may act for any user
}

type identityKey struct{}

type authFailureKey struct{}

// identityFrom returns the identity of the request's verified token, if
// it carried one.
func identityFrom(ctx context.Context) (identity, bool) {
	id, ok := ctx.Value(identityKey{}).(identity)
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
	case !ok || id.server:
		return given, nil
	case given == "" || given == id.subject:
		return id.subject, nil
	}
	// The message does not repeat the subject: nothing of a token is
	// echoed to the client.
	return "", messageapi.Errorf(messageapi.EPERMISSION, "a user token acts only as its own user (its sub): leave user_id out or name that user")
}

// authError is why a request is unauthenticated, in the terms of RFC 6750
// §3.1. description is fixed text for the client; cause, which may hold
// library text, goes only to the debug log.
type authError struct {
	code        string // "" (no credentials), invalid_request or invalid_token
	description string
	cause       error
}

var errNoToken = &authError{description: "this request needs a bearer token in the Authorization header"}

// challenge is the WWW-Authenticate value for e. The descriptions are
// fixed strings without quotes or backslashes, as a quoted-string needs.
func (e *authError) challenge() string {
	if e.code == "" {
		return `Bearer realm="message-api"`
	}
	return fmt.Sprintf(`Bearer realm="message-api", error=%q, error_description=%q`, e.code, e.description)
}

// verifier checks bearer tokens: the signature with the configured key
// and only the configured algorithms, then exp (required), nbf, aud and
// iss, and that sub is a user id.
//
// It remembers the tokens it accepted, until they expire: a client sends
// the same token with every request, and verifying it again (decoding,
// a signature check, the claims) costs a fifth of a cached page's time.
// The keys and rules never change while the process runs, so a
// remembered verdict is the one verifying again would give, until exp
// plus the leeway.
type verifier struct {
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
	leeway  time.Duration
	now     func() time.Time

	mu    sync.RWMutex
	known map[string]knownToken
}

// knownToken is an accepted token's identity, and until when it holds.
type knownToken struct {
	id    identity
	until time.Time
}

// maxKnownTokens bounds the tokens a verifier remembers (about 200 bytes
// each); past it, it starts afresh.
const maxKnownTokens = 50_000

// newVerifier returns the verifier of c, or nil when auth is off.
func newVerifier(c authConfig) *verifier {
	if !c.enabled() {
		return nil
	}
	// One kind of key at a time, and the parser accepts only the
	// algorithms of those keys: never "none", and never an algorithm the
	// token picks, so an HS256 token "signed" with an RSA public key is
	// refused before any key is looked at.
	var methods []string
	var keyfunc jwt.Keyfunc
	if len(c.secret) > 0 {
		secret := c.secret
		methods = []string{jwt.SigningMethodHS256.Alg()}
		keyfunc = func(*jwt.Token) (any, error) { return secret, nil }
	} else {
		seen := map[string]bool{}
		for _, k := range c.keys {
			if !seen[k.alg] {
				seen[k.alg] = true
				methods = append(methods, k.alg)
			}
		}
		keyfunc = selectKey(c.keys)
	}
	v := &verifier{keyfunc: keyfunc, leeway: c.leeway, now: time.Now, known: map[string]knownToken{}}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithLeeway(c.leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() })}
	if c.audience != "" {
		opts = append(opts, jwt.WithAudience(c.audience))
	}
	if c.issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.issuer))
	}
	v.parser = jwt.NewParser(opts...)
	return v
}

// tokenClaims are the claims the API reads. Role is any JSON value: only
// the string "server" makes a server token, so an identity provider's own
// role claims ("authenticated", a list) leave a user token.
type tokenClaims struct {
	jwt.RegisteredClaims
	Role any `json:"role,omitempty"`
}

// verify checks the Authorization header values of a request, which has
// at least one.
func (v *verifier) verify(values []string) (identity, *authError) {
	if len(values) != 1 {
		return identity{}, &authError{code: "invalid_request", description: "send one Authorization header"}
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	token = strings.TrimLeft(token, " ")
	if !strings.EqualFold(scheme, "Bearer") || !isToken68(token) {
		return identity{}, &authError{code: "invalid_request", description: "the Authorization header must be Bearer followed by a token"}
	}
	now := v.now()
	v.mu.RLock()
	known, ok := v.known[token]
	v.mu.RUnlock()
	if ok && now.Before(known.until) {
		return known.id, nil
	}
	var claims tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &claims, v.keyfunc); err != nil {
		return identity{}, &authError{code: "invalid_token", description: tokenProblem(err), cause: err}
	}
	switch {
	case claims.Subject == "":
		return identity{}, &authError{code: "invalid_token", description: "the token has no subject (sub)"}
	case !messageapi.ValidUserID(claims.Subject):
		return identity{}, &authError{code: "invalid_token", description: "the token's subject (sub) is not a valid user id"}
	}
	id := identity{subject: claims.Subject, server: claims.Role == roleServer}
	v.mu.Lock()
	if len(v.known) >= maxKnownTokens {
		clear(v.known)
	}
	v.known[token] = knownToken{id: id, until: claims.ExpiresAt.Add(v.leeway)} // exp is required
	v.mu.Unlock()
	return id, nil
}

// tokenProblem describes a refused token for its client in words of our
// own, never the library's.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token lacks a required claim (exp, or aud or iss where they are checked)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token is not meant for this service (aud)"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token's issuer (iss) is not accepted"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token's algorithm, key or signature is not accepted"
	}
	return "the token is not valid"
}

// isToken68 reports whether s is a non-empty b64token (RFC 6750 §2.1).
func isToken68(s string) bool {
	t := strings.TrimRight(s, "=")
	if t == "" {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
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
func authenticate(v *verifier) func(http.Handler) http.Handler {
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
func verified(r *http.Request, v *verifier, values []string) *http.Request {
	ctx := r.Context()
	if id, failure := v.verify(values); failure != nil {
		ctx = context.WithValue(ctx, authFailureKey{}, failure)
	} else {
		ctx = context.WithValue(ctx, identityKey{}, id)
	}
	return r.WithContext(ctx)
}

// requireToken answers 401 for a request whose token was refused, and
// for one without a token that needs one: every write, and reads when
// reads is set.
func requireToken(v *verifier, reads bool) func(http.Handler) http.Handler {
	if v == nil {
		return passThrough
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			failure, _ := r.Context().Value(authFailureKey{}).(*authError)
			if _, ok := identityFrom(r.Context()); !ok && failure == nil && (reads || isWrite(r.Method)) {
				failure = errNoToken
			}
			if failure == nil {
				next.ServeHTTP(w, r)
				return
			}
			ctx := r.Context()
			requestLogger(ctx).DebugContext(ctx, "request unauthenticated", "reason", failure.description, "err", failure.cause)
			w.Header().Set("WWW-Authenticate", failure.challenge())
			writeError(w, r, &messageapi.Error{Code: messageapi.EUNAUTHENTICATED, Message: failure.description})
		})
	}
}

// passThrough is the middleware of a feature that is off.
func passThrough(next http.Handler) http.Handler { return next }

// verificationKey is a public key from the JWKS file and the one
// algorithm it verifies.
type verificationKey struct {
	id  string // kid, "" when the file gives none
	alg string // RS256 or EdDSA
	key any    // *rsa.PublicKey or ed25519.PublicKey
}

// selectKey returns the keys a token may be signed with: those of its
// algorithm, and of its kid when it names one.
func selectKey(keys []verificationKey) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, hasKid := t.Header["kid"]
		var set jwt.VerificationKeySet
		for _, k := range keys {
			if k.alg == t.Method.Alg() && (!hasKid || kid == any(k.id)) {
				set.Keys = append(set.Keys, k.key)
			}
		}
		if len(set.Keys) == 0 {
			return nil, fmt.Errorf("no %s key with kid %v", t.Method.Alg(), kid)
		}
		return set, nil
	}
}

// loadJWKS reads the public keys of a JWKS file (RFC 7517): RSA keys of at
// least 2048 bits, for RS256, and Ed25519 keys (OKP), for EdDSA. Keys for
// encryption ("use": "enc") are skipped. Any other key, private and
// symmetric keys included, is an error, so a mistaken file stops start-up
// rather than refusing every token.
func loadJWKS(path string) ([]verificationKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s is not a JWKS file: %v", path, err)
	}
	var keys []verificationKey
	kids := map[string]bool{}
	for i, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("key %d: %v", i, err)
		}
		if jwk.Use == "enc" {
			continue
		}
		name := fmt.Sprintf("key %d (kid %q)", i, jwk.KeyID)
		k := verificationKey{id: jwk.KeyID}
		switch key := jwk.Key.(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < 2048 {
				return nil, fmt.Errorf("%s: an RSA key must have at least 2048 bits, not %d", name, key.N.BitLen())
			}
			k.alg, k.key = jwt.SigningMethodRS256.Alg(), key
		case ed25519.PublicKey:
			k.alg, k.key = jwt.SigningMethodEdDSA.Alg(), key
		default:
			if !jwk.IsPublic() {
				return nil, fmt.Errorf("%s is a private or symmetric key; the file must hold public keys only", name)
			}
			return nil, fmt.Errorf("%s is a %T; only RSA (RS256) and Ed25519 (EdDSA) keys are supported", name, jwk.Key)
		}
		switch {
		case jwk.Use != "" && jwk.Use != "sig":
			return nil, fmt.Errorf("%s has use %q; want sig", name, jwk.Use)
		case jwk.Algorithm != "" && jwk.Algorithm != k.alg:
			return nil, fmt.Errorf("%s has alg %q; an RSA key must be RS256 and an Ed25519 key EdDSA", name, jwk.Algorithm)
		case k.id != "" && kids[k.id]:
			return nil, fmt.Errorf("%s: the kid is used twice", name)
		}
		kids[k.id] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no signing key", path)
	}
	return keys, nil
}

// mintToken signs a development token with the HS256 secret.
func mintToken(c authConfig, subject string, server bool, ttl time.Duration, now time.Time) (string, error) {
	if len(c.secret) == 0 {
		return "", errors.New("token: no secret to sign with; set -auth-secret, AUTH_SECRET, -auth-secret-file or AUTH_SECRET_FILE")
	}
	claims := tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   subject,
		Issuer:    c.issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	if c.audience != "" {
		claims.Audience = jwt.ClaimStrings{c.audience}
	}
	if server {
		claims.Role = roleServer
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.secret)
}
